"""Token estimation for pre-flight budget checks, offline and never raising.

OpenAI models are counted exactly with tiktoken and the encoding the model uses
(``o200k_base`` for gpt-4o, gpt-4.1, gpt-4.5, gpt-5, chatgpt-4o and the o-series;
``cl100k_base`` for gpt-4, gpt-3.5 and the embedding models). tiktoken downloads its encoding
files on first use; tokentrail never lets it touch the network. It looks for the file, in
order, where tiktoken itself would (``TIKTOKEN_CACHE_DIR``, ``DATA_GYM_CACHE_DIR`` or the
default temporary cache) and then in the copies ``llama-index-core`` ships in
``llama_index/core/_static/tiktoken_cache`` (file names are the SHA-1 of the blob URL). The
file is checked against tiktoken's expected SHA-256 first, because on a mismatch tiktoken
deletes it and downloads it again. When the offline copy is used and the user has set no
cache variable, ``TIKTOKEN_CACHE_DIR`` points at it only while tiktoken loads it (the same
mechanism llama-index uses); a cache variable the user set is never changed. When no file
is found the heuristic below is used.

Other families (Claude, Gemini, Llama, Mistral, ...) and OpenAI models without a
tokenizer file use a calibrated heuristic: word-like pieces, numbers, punctuation and
non-Latin characters are counted the way BPE tokenizers split them, then scaled by a
per-family factor; text that looks like code is counted with the code calibration.

Chat requests add the per-message overhead OpenAI's cookbook counts (3 tokens per message,
1 per ``name``, 3 to prime the reply) and the tool definitions (the cookbook's function
counting). Example::

    from tokentrail.estimate import count_message_tokens
    count_message_tokens([{"role": "user", "content": "Hello!"}], model="gpt-4o")  # 9
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import math
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = [
    "IMAGE_TOKENS",
    "TOKENS_PER_MESSAGE",
    "TOKENS_PER_NAME",
    "TOKENS_REPLY_PRIMING",
    "count_message_tokens",
    "count_text_tokens",
    "count_tools_tokens",
    "encoding_for",
    "encoding_name_for",
    "family_of",
    "heuristic_count",
    "is_exact",
    "looks_like_code",
    "message_tokens",
]

logger = logging.getLogger("tokentrail")

#: Chat overhead per message, per ``name`` field and to prime the reply (OpenAI cookbook).
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
TOKENS_REPLY_PRIMING = 3
#: Tokens charged for an image part whose size is unknown: a 1024x1024 image at high detail
#: (85 base + 4 tiles x 170). Larger images cost more; this is an estimate, not a bound.
IMAGE_TOKENS = 765

_BLOB = "https://openaipublic.blob.core.windows.net/encodings/"
# encoding -> (file tiktoken reads, expected SHA-256), as in tiktoken_ext.openai_public.
_ENCODING_FILES: dict[str, tuple[str, str]] = {
    "cl100k_base": (
        _BLOB + "cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
    "o200k_base": (
        _BLOB + "o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
    "o200k_harmony": (
        _BLOB + "o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
    "p50k_base": (
        _BLOB + "p50k_base.tiktoken",
        "94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069",
    ),
    "r50k_base": (
        _BLOB + "r50k_base.tiktoken",
        "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930",
    ),
}

# (model prefix, encoding), longest-first matching; names are normalized first (see _base).
_MODEL_PREFIXES: tuple[tuple[str, str], ...] = (
    ("gpt-oss", "o200k_harmony"),
    ("gpt-5", "o200k_base"),
    ("gpt-4.5", "o200k_base"),
    ("gpt-4.1", "o200k_base"),
    ("gpt-4o", "o200k_base"),
    ("chatgpt-4o", "o200k_base"),
    ("o1", "o200k_base"),
    ("o3", "o200k_base"),
    ("o4", "o200k_base"),
    ("codex-mini", "o200k_base"),
    ("computer-use", "o200k_base"),
    ("gpt-4", "cl100k_base"),
    ("gpt-3.5", "cl100k_base"),
    ("gpt-35", "cl100k_base"),
    ("text-embedding-3", "cl100k_base"),
    ("text-embedding-ada-002", "cl100k_base"),
    ("davinci-002", "cl100k_base"),
    ("babbage-002", "cl100k_base"),
)

#: Encoding used when no model is given: the one current OpenAI models use.
DEFAULT_ENCODING = "o200k_base"


@dataclass(frozen=True, slots=True)
class _Family:
    """Heuristic calibration: tokens = cl100k-like piece count x ``scale``."""

    name: str
    scale: float  # relative to the piece counter (which tracks cl100k_base)
    code_scale: float


# Scales relative to cl100k_base, from published tokenizer comparisons: Claude's tokenizers
# produce ~10-30% more tokens than cl100k on English prose (more on code); Gemini's
# SentencePiece vocabulary ~5% fewer; Llama 3 uses a 128k tiktoken vocabulary that contains
# cl100k's; Mistral's Tekken/SentencePiece ~10% more. Rounded up where unsure: the guard
# prefers reserving a little too much to too little.
_FAMILIES: tuple[tuple[str, _Family], ...] = (
    ("claude", _Family("claude", 1.20, 1.30)),
    ("anthropic", _Family("claude", 1.20, 1.30)),
    ("gemini", _Family("gemini", 1.00, 1.05)),
    ("gemma", _Family("gemini", 1.00, 1.05)),
    ("llama", _Family("llama", 1.00, 1.05)),
    ("mistral", _Family("mistral", 1.10, 1.15)),
    ("mixtral", _Family("mistral", 1.10, 1.15)),
    ("codestral", _Family("mistral", 1.10, 1.15)),
    ("command", _Family("cohere", 1.10, 1.15)),
    ("deepseek", _Family("deepseek", 1.05, 1.10)),
    ("qwen", _Family("qwen", 1.05, 1.10)),
    ("grok", _Family("grok", 1.05, 1.10)),
    ("gpt", _Family("openai", 1.00, 1.00)),
)
_DEFAULT_FAMILY = _Family("other", 1.15, 1.20)
_OPENAI_FAMILY = _Family("openai", 1.00, 1.00)

_PROVIDER_PREFIX = re.compile(r"^(?:[\w.-]+/)+")
_BEDROCK_PREFIX = re.compile(r"^(?:(?:us|eu|apac|global)\.)?(?:[a-z]+)\.(?=[a-z])")


def _base(model: str | None) -> str:
    """Lower-cased model name without provider paths (``openai/``, ``azure/``) or ``ft:``."""
    if not model:
        return ""
    name = str(model).strip().lower()
    if name.startswith("ft:"):
        name = name[3:]
    return _PROVIDER_PREFIX.sub("", name)


@lru_cache(maxsize=2048)
def encoding_name_for(model: str | None) -> str | None:
    """The tiktoken encoding an OpenAI model uses, ``None`` for other families.

    ``None`` (no model) gives :data:`DEFAULT_ENCODING`.
    """
    if model is None or not str(model).strip():
        return DEFAULT_ENCODING
    name = _base(model)
    for prefix, encoding in _MODEL_PREFIXES:
        if name.startswith(prefix) and _prefix_ends(name, prefix):
            return encoding
    return None


def _prefix_ends(name: str, prefix: str) -> bool:
    # "o1" matches "o1", "o1-mini", "o1-2024-12-17" but not "o1x" (nor "gpt-4" "gpt-40").
    return len(name) == len(prefix) or not name[len(prefix)].isalnum()


def family_of(model: str | None) -> str:
    """The heuristic family a model belongs to (``claude``, ``gemini``, ``openai``...)."""
    return _family(model).name


@lru_cache(maxsize=2048)
def _family(model: str | None) -> _Family:
    name = _base(model)
    if encoding_name_for(model) is not None:
        return _OPENAI_FAMILY
    name = _BEDROCK_PREFIX.sub("", name)
    for needle, family in _FAMILIES:
        if needle in name:
            return family
    return _DEFAULT_FAMILY


# ---------------------------------------------------------------------------- tiktoken files
_load_lock = threading.Lock()
_encodings: dict[str, Any] = {}
_missing: set[str] = set()


def _tiktoken_cache_dir() -> tuple[str | None, bool]:
    """The directory tiktoken reads its cache from, and whether the user chose it."""
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        return os.environ["TIKTOKEN_CACHE_DIR"] or None, True
    if "DATA_GYM_CACHE_DIR" in os.environ:
        return os.environ["DATA_GYM_CACHE_DIR"] or None, True
    return os.path.join(tempfile.gettempdir(), "data-gym-cache"), False


def _llama_index_cache_dir() -> str | None:
    """``llama_index/core/_static/tiktoken_cache`` when llama-index-core is installed."""
    try:
        spec = importlib.util.find_spec("llama_index.core")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "_static" / "tiktoken_cache"
        if candidate.is_dir():
            return str(candidate)
    return None


def _has_valid_file(directory: str | None, url: str, sha256: str) -> bool:
    if not directory:
        return False
    path = os.path.join(directory, hashlib.sha1(url.encode()).hexdigest())
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest() == sha256
    except OSError:
        return False


def _load_encoding(name: str) -> Any | None:
    """Load one tiktoken encoding from a local file, or ``None``; never downloads."""
    spec = _ENCODING_FILES.get(name)
    if spec is None:
        return None
    try:
        import tiktoken
    except ImportError:
        return None
    url, sha256 = spec
    own_dir, user_set = _tiktoken_cache_dir()
    if _has_valid_file(own_dir, url, sha256):
        return tiktoken.get_encoding(name)
    static_dir = _llama_index_cache_dir()
    if user_set or not _has_valid_file(static_dir, url, sha256):
        # The user's own cache lacks the file and we must not change their setting.
        return None
    assert static_dir is not None
    os.environ["TIKTOKEN_CACHE_DIR"] = static_dir
    try:
        return tiktoken.get_encoding(name)
    finally:
        # Only we set it (user_set was False), so removing it restores the user's state.
        os.environ.pop("TIKTOKEN_CACHE_DIR", None)


def _get_encoding(name: str) -> Any | None:
    enc = _encodings.get(name)
    if enc is not None or name in _missing:
        return enc
    with _load_lock:
        if name in _encodings or name in _missing:
            return _encodings.get(name)
        try:
            enc = _load_encoding(name)
        except Exception as exc:  # a broken cache file must not break a call
            logger.warning("tokentrail: tiktoken encoding %s unavailable (%s)", name, exc)
            enc = None
        if enc is None:
            logger.info("tokentrail: no local %s file; token counts use the heuristic", name)
            _missing.add(name)
        else:
            _encodings[name] = enc
        return enc


def encoding_for(model: str | None) -> Any | None:
    """The ``tiktoken.Encoding`` for ``model`` (loaded once, offline), or ``None``.

    ``None`` for non-OpenAI families and when no local encoding file exists.
    """
    name = encoding_name_for(model)
    return None if name is None else _get_encoding(name)


def is_exact(model: str | None) -> bool:
    """True when counts for ``model`` come from its real tokenizer, not the heuristic."""
    return encoding_for(model) is not None


def _clear_caches() -> None:
    """Forget loaded encodings and cached counts (tests)."""
    with _load_lock:
        _encodings.clear()
        _missing.clear()
    _COUNTS.clear()
    _SHORT.clear()


# ---------------------------------------------------------------------------- heuristic
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
    return _heuristic(text, _family(model)) if text else 0


_FAMILY_BY_NAME = {f.name: f for _, f in _FAMILIES} | {"other": _DEFAULT_FAMILY}


def _heuristic(text: str, family: _Family) -> int:
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


# ---------------------------------------------------------------------------- counting
# Counts of texts seen recently, keyed by (hash, length, tokenizer): repeated system prompts
# and history are tokenized once. Keys hold no text, so memory stays small (~100 B/entry).
_COUNTS: dict[tuple[int, int, str], int] = {}
_COUNTS_MAX = 16_384
_MIN_CACHED_CHARS = 64  # shorter texts are cached by value, longer ones by hash


def _count_uncached(text: str, encoding: str | None, family: str) -> int:
    if encoding is not None:
        enc = _get_encoding(encoding)
        if enc is not None:
            return len(enc.encode_ordinary(text))
    return _heuristic(text, _FAMILY_BY_NAME.get(family, _DEFAULT_FAMILY))


_SHORT: dict[tuple[str, str], int] = {}


def _count_cached(text: str, encoding: str | None, family: str) -> int:
    if len(text) < _MIN_CACHED_CHARS:
        # Roles, names, short turns: keyed by the text itself (small by construction).
        short_key = (text, encoding or family)
        found = _SHORT.get(short_key)
        if found is None:
            found = _count_uncached(text, encoding, family)
            if len(_SHORT) >= _COUNTS_MAX:
                _SHORT.clear()
            _SHORT[short_key] = found
        return found
    key = (hash(text), len(text), encoding or family)
    count = _COUNTS.get(key)
    if count is None:
        count = _count_uncached(text, encoding, family)
        if len(_COUNTS) >= _COUNTS_MAX:
            # Drop the oldest half (dicts keep insertion order); cheaper than strict LRU.
            for old in list(_COUNTS)[: _COUNTS_MAX // 2]:
                _COUNTS.pop(old, None)
        _COUNTS[key] = count
    return count


def _counter(model: str | None) -> tuple[str | None, str]:
    """(tiktoken encoding, or None when unavailable; heuristic family name) for ``model``."""
    encoding = encoding_name_for(model)
    if encoding is not None and _get_encoding(encoding) is None:
        encoding = None
    return encoding, "" if encoding is not None else _family(model).name


def count_text_tokens(text: str | None, model: str | None = None) -> int:
    """Tokens of ``text`` for ``model`` (exact for OpenAI models, else estimated). Never raises.

    Example: ``count_text_tokens("hello world", model="gpt-4o")`` is 2.
    """
    if not text:
        return 0
    try:
        if not isinstance(text, str):
            text = str(text)
        return _count_cached(text, *_counter(model))
    except Exception:
        logger.warning("tokentrail: token count failed; using a length estimate", exc_info=True)
        return max(1, len(str(text)) // 3)


def _part_tokens(part: Any, model: str | None) -> int:
    if isinstance(part, str):
        return count_text_tokens(part, model)
    if not isinstance(part, Mapping):
        return count_text_tokens(str(part), model)
    kind = str(part.get("type", ""))
    if kind in ("text", "input_text", "output_text") or ("text" in part and not kind):
        return count_text_tokens(str(part.get("text") or ""), model)
    if kind in ("image_url", "image", "input_image") or "image_url" in part:
        detail = part.get("image_url", {})
        if isinstance(detail, Mapping) and detail.get("detail") == "low":
            return 85
        return IMAGE_TOKENS
    if kind in ("tool_use", "tool_result", "function_call"):
        return count_text_tokens(_json(part), model)
    # Audio, files and unknown parts: count their text-like fields, never binary payloads.
    texts = [str(v) for k, v in part.items() if k in ("text", "content", "input", "name")]
    return sum(count_text_tokens(t, model) for t in texts)


def _content_tokens(content: Any, model: str | None) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return count_text_tokens(content, model)
    if isinstance(content, Iterable) and not isinstance(content, (bytes, Mapping)):
        return sum(_part_tokens(p, model) for p in content)
    return _part_tokens(content, model)


def _json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        return str(value)


def _field(message: Any, name: str) -> Any:
    if isinstance(message, Mapping):
        return message.get(name)
    return getattr(message, name, None)


def message_tokens(message: Any, model: str | None = None) -> int:
    """Tokens one chat message costs, including its per-message overhead."""
    try:
        tokens = TOKENS_PER_MESSAGE
        role = _field(message, "role") or _field(message, "type")
        if role:
            tokens += count_text_tokens(str(role), model)
        tokens += _content_tokens(_field(message, "content"), model)
        name = _field(message, "name")
        if name:
            tokens += TOKENS_PER_NAME + count_text_tokens(str(name), model)
        tool_calls = _field(message, "tool_calls")
        if tool_calls:
            for call in tool_calls:
                fn = _field(call, "function") or call
                tokens += count_text_tokens(str(_field(fn, "name") or ""), model)
                args = _field(fn, "arguments") or _field(fn, "args") or ""
                tokens += count_text_tokens(args if isinstance(args, str) else _json(args), model)
                tokens += TOKENS_PER_MESSAGE
        return tokens
    except Exception:
        logger.warning("tokentrail: could not count a message; estimating it", exc_info=True)
        return TOKENS_PER_MESSAGE + max(1, len(str(message)) // 3)


# A message dict with no other keys (and text values) is counted on the fast path of
# count_message_tokens; any other key (name, tool_calls, type...) takes the general path.
_PLAIN_MESSAGE_KEYS = frozenset(("role", "content"))


def count_message_tokens(
    messages: Sequence[Any] | None,
    model: str | None = None,
    tools: Sequence[Any] | None = None,
) -> int:
    """Prompt tokens of a chat request: messages, chat overhead and tool definitions.

    ``messages`` are mappings (or objects) with ``role``, ``content`` (a string or a list of
    content parts such as ``{"type": "text", "text": ...}``) and optional ``name`` and
    ``tool_calls``. Never raises.
    """
    total = 0
    counter: tuple[str | None, str] | None = None
    for message in messages or ():
        # The usual message, a dict with a text role and text content and nothing else
        # counted, takes one lookup per text; anything else goes through message_tokens.
        if type(message) is dict and _PLAIN_MESSAGE_KEYS.issuperset(message):
            role = message.get("role")
            content = message.get("content")
            if type(role) is str and type(content) is str:
                try:
                    if counter is None:
                        counter = _counter(model)
                    tokens = TOKENS_PER_MESSAGE
                    if role:
                        tokens += _count_cached(role, *counter)
                    if content:
                        tokens += _count_cached(content, *counter)
                except Exception:  # counted by the general path, which logs and estimates
                    pass
                else:
                    total += tokens
                    continue
        total += message_tokens(message, model)
    if messages:
        total += TOKENS_REPLY_PRIMING
    if tools:
        total += count_tools_tokens(tools, model)
    return total


# Function-definition overhead, from OpenAI's cookbook ("counting tokens for chat API calls").
_FUNC_INIT_O200K, _FUNC_INIT_CL100K = 7, 10
_PROP_INIT, _PROP_KEY, _ENUM_INIT, _ENUM_ITEM, _FUNC_END = 3, 3, -3, 3, 12


def _tool_spec(tool: Any) -> Mapping[str, Any] | None:
    """Normalize an OpenAI, Anthropic or LangChain-style tool to {name, description, params}."""
    spec: Any = tool
    if not isinstance(spec, Mapping):
        for attr in ("model_json_schema", "schema"):  # pydantic models / classes
            fn = getattr(spec, attr, None)
            if callable(fn):
                try:
                    schema = fn()
                except Exception:
                    continue
                if isinstance(schema, Mapping):
                    return {
                        "name": schema.get("title", getattr(spec, "__name__", "tool")),
                        "description": schema.get("description", ""),
                        "parameters": schema,
                    }
        name = getattr(spec, "name", None)
        if name is None:
            return None
        args = getattr(spec, "args", None)
        return {
            "name": name,
            "description": getattr(spec, "description", "") or "",
            "parameters": {"type": "object", "properties": args if isinstance(args, dict) else {}},
        }
    if isinstance(spec.get("function"), Mapping):
        spec = spec["function"]
    params = spec.get("parameters") or spec.get("input_schema") or {}
    return {
        "name": spec.get("name", ""),
        "description": spec.get("description", ""),
        "parameters": params,
    }


def count_tools_tokens(tools: Sequence[Any], model: str | None = None) -> int:
    """Tokens the tool (function) definitions add to a request (OpenAI cookbook rules)."""
    try:
        encoding = encoding_name_for(model)
        func_init = _FUNC_INIT_CL100K if encoding == "cl100k_base" else _FUNC_INIT_O200K
        total = 0
        for tool in tools:
            spec = _tool_spec(tool)
            if spec is None:
                total += count_text_tokens(_json(tool), model)
                continue
            total += func_init
            desc = str(spec.get("description") or "").rstrip(".")
            total += count_text_tokens(f"{spec.get('name', '')}:{desc}", model)
            params = spec.get("parameters")
            props = params.get("properties") if isinstance(params, Mapping) else None
            if isinstance(props, Mapping) and props:
                total += _PROP_INIT
                for key, prop in props.items():
                    total += _PROP_KEY
                    prop = prop if isinstance(prop, Mapping) else {}
                    if "enum" in prop:
                        total += _ENUM_INIT
                        for item in prop["enum"] or ():
                            total += _ENUM_ITEM + count_text_tokens(str(item), model)
                    p_desc = str(prop.get("description") or "").rstrip(".")
                    total += count_text_tokens(f"{key}:{prop.get('type', '')}:{p_desc}", model)
                    # Nested schemas are not in the cookbook's rule; count their JSON.
                    for nested in ("properties", "items", "anyOf", "oneOf"):
                        if nested in prop:
                            total += count_text_tokens(_json(prop[nested]), model)
        return total + (_FUNC_END if total else 0)
    except Exception:
        logger.warning("tokentrail: could not count tool definitions", exc_info=True)
        return sum(len(_json(t)) // 3 for t in tools)
