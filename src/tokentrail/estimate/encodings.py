"""Which tiktoken encoding an OpenAI model uses, and loading it offline (never downloading).

tiktoken downloads its encoding files on first use; tokentrail never lets it touch the
network. It looks for the file, in order, where tiktoken itself would
(``TIKTOKEN_CACHE_DIR``, ``DATA_GYM_CACHE_DIR`` or the default temporary cache) and then in
the copies ``llama-index-core`` ships in ``llama_index/core/_static/tiktoken_cache`` (file
names are the SHA-1 of the blob URL). The file is checked against tiktoken's expected
SHA-256 first, because on a mismatch tiktoken deletes it and downloads it again. When the
offline copy is used and the user has set no cache variable, ``TIKTOKEN_CACHE_DIR`` points
at it only while tiktoken loads it (the same mechanism llama-index uses); a cache variable
the user set is never changed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re
import tempfile
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_ENCODING",
    "base_name",
    "clear_encodings",
    "encoding_for",
    "encoding_name_for",
    "get_encoding",
    "is_exact",
]

logger = logging.getLogger("tokentrail")

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

_PROVIDER_PREFIX = re.compile(r"^(?:[\w.-]+/)+")


def base_name(model: str | None) -> str:
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
    name = base_name(model)
    for prefix, encoding in _MODEL_PREFIXES:
        if name.startswith(prefix) and _prefix_ends(name, prefix):
            return encoding
    return None


def _prefix_ends(name: str, prefix: str) -> bool:
    # "o1" matches "o1", "o1-mini", "o1-2024-12-17" but not "o1x" (nor "gpt-4" "gpt-40").
    return len(name) == len(prefix) or not name[len(prefix)].isalnum()


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


def get_encoding(name: str) -> Any | None:
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
    return None if name is None else get_encoding(name)


def is_exact(model: str | None) -> bool:
    """True when counts for ``model`` come from its real tokenizer, not the heuristic."""
    return encoding_for(model) is not None


def clear_encodings() -> None:
    """Forget loaded encodings (tests)."""
    with _load_lock:
        _encodings.clear()
        _missing.clear()
