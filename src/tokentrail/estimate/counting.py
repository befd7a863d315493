"""Counting a request's prompt: texts, content parts and chat messages, with a memo.

Chat requests add the per-message overhead OpenAI's cookbook counts (3 tokens per message,
1 per ``name``, 3 to prime the reply).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from .encodings import encoding_name_for, get_encoding
from .heuristic import family, family_named, heuristic

__all__ = [
    "IMAGE_TOKENS",
    "TOKENS_PER_MESSAGE",
    "TOKENS_PER_NAME",
    "TOKENS_REPLY_PRIMING",
    "clear_counts",
    "content_tokens",
    "count_cached",
    "count_text_tokens",
    "counter",
    "to_json",
]

logger = logging.getLogger("tokentrail")

#: Chat overhead per message, per ``name`` field and to prime the reply (OpenAI cookbook).
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
TOKENS_REPLY_PRIMING = 3
#: Tokens charged for an image part whose size is unknown: a 1024x1024 image at high detail
#: (85 base + 4 tiles x 170). Larger images cost more; this is an estimate, not a bound.
IMAGE_TOKENS = 765

# Counts of texts seen recently, keyed by (hash, length, tokenizer): repeated system prompts
# and history are tokenized once. Keys hold no text, so memory stays small (~100 B/entry).
_COUNTS: dict[tuple[int, int, str], int] = {}
_COUNTS_MAX = 16_384
_MIN_CACHED_CHARS = 64  # shorter texts are cached by value, longer ones by hash


def _count_uncached(text: str, encoding: str | None, family: str) -> int:
    if encoding is not None:
        enc = get_encoding(encoding)
        if enc is not None:
            return len(enc.encode_ordinary(text))
    return heuristic(text, family_named(family))


_SHORT: dict[tuple[str, str], int] = {}


def count_cached(text: str, encoding: str | None, family: str) -> int:
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


def counter(model: str | None) -> tuple[str | None, str]:
    """(tiktoken encoding, or None when unavailable; heuristic family name) for ``model``."""
    encoding = encoding_name_for(model)
    if encoding is not None and get_encoding(encoding) is None:
        encoding = None
    return encoding, "" if encoding is not None else family(model).name


def count_text_tokens(text: str | None, model: str | None = None) -> int:
    """Tokens of ``text`` for ``model`` (exact for OpenAI models, else estimated). Never raises.

    Example: ``count_text_tokens("hello world", model="gpt-4o")`` is 2.
    """
    if not text:
        return 0
    try:
        if not isinstance(text, str):
            text = str(text)
        return count_cached(text, *counter(model))
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
        return count_text_tokens(to_json(part), model)
    # Audio, files and unknown parts: count their text-like fields, never binary payloads.
    texts = [str(v) for k, v in part.items() if k in ("text", "content", "input", "name")]
    return sum(count_text_tokens(t, model) for t in texts)


def content_tokens(content: Any, model: str | None) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return count_text_tokens(content, model)
    if isinstance(content, Iterable) and not isinstance(content, (bytes, Mapping)):
        return sum(_part_tokens(p, model) for p in content)
    return _part_tokens(content, model)


def to_json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        return str(value)


def clear_counts() -> None:
    """Forget cached counts (tests, benchmarks)."""
    _COUNTS.clear()
    _SHORT.clear()
