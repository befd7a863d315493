"""OpenAI-style streams: the usage of a whole stream, from its chunks.

Chat Completions streams end with a chunk whose ``usage`` is the call's (read with the
OpenAI-compatible rules, the superset of chat quirks); Responses API streams carry it in
the ``response.completed`` event.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..usage import Usage
from ._access import get, has_any, path
from ._build import never_raises
from .compatible import from_openai_compatible
from .openai import from_openai_responses

__all__ = ["accumulate_openai_stream"]

_CHAT_KEYS = ("prompt_tokens", "completion_tokens")
_RESPONSES_KEYS = ("input_tokens", "output_tokens")


@never_raises("OpenAI stream")
def accumulate_openai_stream(chunks: Iterable[Any], *, model: str | None = None) -> Usage | None:
    """Usage of a whole OpenAI-style stream, from its chunks (objects or dicts).

    Chat Completions streams carry usage once, in the final chunk (``stream_options=
    {"include_usage": True}``); some servers (vLLM with continuous usage stats) repeat a
    *cumulative* usage on every chunk and Groq puts it under ``x_groq.usage``. Either way
    the last usage seen is the total: usages are never summed. Responses API streams
    carry it in the ``response.completed`` event. ``None`` when no chunk had usage.
    """
    last_chat: Any = None
    last_responses: Any = None
    for chunk in chunks:
        usage = get(chunk, "usage")
        if usage is None:
            usage = path(chunk, "x_groq", "usage")
        if usage is not None:
            last_chat = usage
            continue
        response_usage = path(chunk, "response", "usage")
        if response_usage is not None:
            last_responses = response_usage
    if last_responses is not None and last_chat is None:
        return from_openai_responses(last_responses)
    if last_chat is None:
        return None
    if has_any(last_chat, *_RESPONSES_KEYS) and not has_any(last_chat, *_CHAT_KEYS):
        return from_openai_responses(last_chat)
    return from_openai_compatible(last_chat, model=model)
