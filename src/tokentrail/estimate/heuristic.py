"""Token counts without a tokenizer: a calibrated heuristic per model family.

Word-like pieces, numbers, punctuation and non-Latin characters are counted the way BPE
tokenizers split them, then scaled by a per-family factor; text that looks like code is
counted with the code calibration.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

from .encodings import base_name, encoding_name_for

__all__ = [
    "Family",
    "family",
    "family_named",
    "family_of",
    "heuristic",
    "heuristic_count",
    "looks_like_code",
]


@dataclass(frozen=True, slots=True)
class Family:
    """Heuristic calibration: tokens = cl100k-like piece count x ``scale``."""

    name: str
    scale: float  # relative to the piece counter (which tracks cl100k_base)
    code_scale: float


# Scales relative to cl100k_base, from published tokenizer comparisons: Claude's tokenizers
# produce ~10-30% more tokens than cl100k on English prose (more on code); Gemini's
# SentencePiece vocabulary ~5% fewer; Llama 3 uses a 128k tiktoken vocabulary that contains
# cl100k's; Mistral's Tekken/SentencePiece ~10% more. Rounded up where unsure: the guard
# prefers reserving a little too much to too little.
_FAMILIES: tuple[tuple[str, Family], ...] = (
    ("claude", Family("claude", 1.20, 1.30)),
    ("anthropic", Family("claude", 1.20, 1.30)),
    ("gemini", Family("gemini", 1.00, 1.05)),
    ("gemma", Family("gemini", 1.00, 1.05)),
    ("llama", Family("llama", 1.00, 1.05)),
    ("mistral", Family("mistral", 1.10, 1.15)),
    ("mixtral", Family("mistral", 1.10, 1.15)),
    ("codestral", Family("mistral", 1.10, 1.15)),
    ("command", Family("cohere", 1.10, 1.15)),
    ("deepseek", Family("deepseek", 1.05, 1.10)),
    ("qwen", Family("qwen", 1.05, 1.10)),
    ("grok", Family("grok", 1.05, 1.10)),
    ("gpt", Family("openai", 1.00, 1.00)),
)
_DEFAULT_FAMILY = Family("other", 1.15, 1.20)
_OPENAI_FAMILY = Family("openai", 1.00, 1.00)

_BEDROCK_PREFIX = re.compile(r"^(?:(?:us|eu|apac|global)\.)?(?:[a-z]+)\.(?=[a-z])")


def family_of(model: str | None) -> str:
    """The heuristic family a model belongs to (``claude``, ``gemini``, ``openai``...)."""
    return family(model).name


@lru_cache(maxsize=2048)
def family(model: str | None) -> Family:
    name = base_name(model)
    if encoding_name_for(model) is not None:
        return _OPENAI_FAMILY
    name = _BEDROCK_PREFIX.sub("", name)
    for needle, family in _FAMILIES:
        if needle in name:
            return family
    return _DEFAULT_FAMILY


# Pieces close to how cl100k/o200k pre-tokenize: letter runs (with a leading space/symbol),
# digit runs, punctuation runs and whitespace runs.
_PIECE = re.compile(
    r"""'(?:[sdmt]|ll|ve|re)|[^\r\n\w]?[^\W\d_]+|\d+| ?[^\s\w]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_CODE_HINTS = re.compile(
    r"(?m)^\s*(?:def |class |import |from \S+ import|return\b|#include|function\b|const |let |"
    r"var |public |private |fn |SELECT\b|if\s*\(|for\s*\()|[{};]\s*$|=>|::|->"
)

# Calibration of the piece counter against cl100k_base (see benchmarks/bench_estimate.py):
# a run of n ASCII letters costs about 1 + (n - 1) // _WORD_CHARS tokens, other alphabets
# (accented Latin, Cyrillic, Greek...) about one token per _OTHER_CHARS letters, and CJK
# characters _CJK_TOKENS tokens each.
_WORD_CHARS = 7
_CODE_WORD_CHARS = 6
_OTHER_CHARS = 2.2
_CJK_TOKENS = 1.25


def looks_like_code(text: str) -> bool:
    """True when ``text`` looks like source code (symbols, indentation, keywords)."""
    if len(text) < 20:
        return False
    sample = text[:4000]
    symbols = sum(sample.count(c) for c in "{}()[];=<>_/*\\|")
    hints = len(_CODE_HINTS.findall(sample))
    lines = max(1, sample.count("\n"))
    return symbols / len(sample) > 0.06 or hints / lines > 0.25


def heuristic_count(text: str, model: str | None = None) -> int:
    """Estimate the tokens of ``text`` without a tokenizer (calibrated per model family)."""
    return heuristic(text, family(model)) if text else 0


_FAMILY_BY_NAME = {f.name: f for _, f in _FAMILIES} | {"other": _DEFAULT_FAMILY}


def heuristic(text: str, family: Family) -> int:
    code = looks_like_code(text)
    word_chars = _CODE_WORD_CHARS if code else _WORD_CHARS
    tokens = 0.0
    for piece in _PIECE.findall(text):
        if piece[-1].isalpha():
            ascii_letters = other = cjk = 0
            for c in piece:
                if c.isascii():
                    ascii_letters += c.isalpha()
                elif _CJK.match(c):
                    cjk += 1
                elif c.isalpha():
                    other += 1
            if cjk:
                tokens += cjk * _CJK_TOKENS + (ascii_letters + other) / _OTHER_CHARS
            elif other:
                tokens += max(1.0, (ascii_letters + other) / _OTHER_CHARS)
            else:
                tokens += 1 + (ascii_letters - 1) // word_chars
        elif piece[-1].isdigit():
            tokens += math.ceil(len(piece) / 3)  # digits come in groups of up to three
        elif piece.isspace():
            tokens += 1 if "\n" not in piece else max(1, piece.count("\n") // 2)
        else:
            tokens += math.ceil(len(piece.strip()) / 2) or 1
    scale = family.code_scale if code else family.scale
    return max(1, math.ceil(tokens * scale))


def family_named(name: str) -> Family:
    """The calibration of a family by name (the default one for unknown names)."""
    return _FAMILY_BY_NAME.get(name, _DEFAULT_FAMILY)
