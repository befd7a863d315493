"""Prompt tokens of chat requests: each message with its overhead, the reply priming, tools."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from . import counting
from .counting import TOKENS_PER_MESSAGE, TOKENS_PER_NAME, TOKENS_REPLY_PRIMING
from .tools import count_tools_tokens

__all__ = ["count_message_tokens", "message_tokens"]

logger = logging.getLogger("tokentrail")


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
            tokens += counting.count_text_tokens(str(role), model)
        tokens += counting.content_tokens(_field(message, "content"), model)
        name = _field(message, "name")
        if name:
            tokens += TOKENS_PER_NAME + counting.count_text_tokens(str(name), model)
        tool_calls = _field(message, "tool_calls")
        if tool_calls:
            for call in tool_calls:
                fn = _field(call, "function") or call
                tokens += counting.count_text_tokens(str(_field(fn, "name") or ""), model)
                args = _field(fn, "arguments") or _field(fn, "args") or ""
                tokens += counting.count_text_tokens(
                    args if isinstance(args, str) else counting.to_json(args), model
                )
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
                        counter = counting.counter(model)
                    tokens = TOKENS_PER_MESSAGE
                    if role:
                        tokens += counting.count_cached(role, *counter)
                    if content:
                        tokens += counting.count_cached(content, *counter)
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
