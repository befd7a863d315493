"""Ollama native API (``/api/chat``, ``/api/generate``) usage.

``prompt_eval_count`` -> input_tokens, ``eval_count`` -> output_tokens, read from the
final response or the last (``done: true``) stream chunk. Ollama leaves
``prompt_eval_count`` out when the whole prompt came from its KV cache; that reads as 0
input tokens (local models cost nothing, so nothing is mispriced).

Dropped on purpose: the ``*_duration`` timings. Ollama's OpenAI-compatible endpoint
(``/v1``) answers in the Chat Completions dialect instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..usage import Usage
from ._access import get, has_any, is_record
from ._build import Tally, logger, never_raises

__all__ = ["from_ollama", "from_ollama_stream"]

_MARKERS = ("prompt_eval_count", "eval_count")


@never_raises("Ollama")
def from_ollama(payload: Any) -> Usage | None:
    """Usage of an Ollama chat/generate response (``ollama.ChatResponse`` or dict)."""
    if payload is None:
        return None
    if not is_record(payload):
        logger.warning("tokentrail: Ollama payload is a %s; dropped", type(payload).__name__)
        return None
    if not has_any(payload, *_MARKERS):
        return None
    tally = Tally("Ollama")
    return tally.usage(
        input_tokens=tally.count(get(payload, "prompt_eval_count"), "prompt_eval_count"),
        output_tokens=tally.count(get(payload, "eval_count"), "eval_count"),
    )


@never_raises("Ollama stream")
def from_ollama_stream(chunks: Iterable[Any]) -> Usage | None:
    """Usage of a streamed Ollama response: the counts are on the final chunk only."""
    last: Any = None
    for chunk in chunks:
        if has_any(chunk, *_MARKERS):
            last = chunk
    return None if last is None else from_ollama(last)
