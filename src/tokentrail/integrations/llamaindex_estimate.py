"""Local token estimates for LlamaIndex calls whose provider reported no usage.

A stream without ``include_usage``, an abandoned stream, a local model that reports nothing,
and every embedding call (LlamaIndex does not pass the provider's embedding usage on): the
prompt and the text generated so far are counted with the model's tokenizer
(:mod:`tokentrail.estimate`) and the row is marked ``estimated``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from .llamaindex_usage import field

__all__ = [
    "estimate_embedding",
    "estimate_prompt",
    "estimate_text",
    "message_dict",
    "response_text",
]

logger = logging.getLogger("tokentrail")


def response_text(response: Any) -> str:
    """What was generated so far, as text: the message content plus its tool calls.

    A tool call counts as its name and its JSON arguments (what the model emitted).
    """
    if response is None:
        return ""
    message = field(response, "message")
    if message is None:
        text = field(response, "text")
        return text if isinstance(text, str) else ""
    try:
        content = message.content
    except Exception:  # blocks that cannot be rendered as text
        content = None
    parts = [content if isinstance(content, str) else ""]
    for block in field(message, "blocks") or ():
        name = field(block, "tool_name")
        if isinstance(name, str):
            arguments = field(block, "tool_kwargs")
            if not isinstance(arguments, str):
                arguments = json.dumps(arguments, default=str)
            parts.append(name + arguments)
    return "".join(parts)


def message_dict(message: Any) -> dict[str, Any]:
    """A ``ChatMessage`` as the ``{"role", "content"}`` mapping the estimator reads."""
    role = field(message, "role")
    role = getattr(role, "value", role)
    try:
        content = message.get("content") if isinstance(message, Mapping) else message.content
    except Exception:
        content = None
    return {"role": str(role or "user"), "content": content if isinstance(content, str) else ""}


def estimate_prompt(
    messages: Sequence[Any] | None,
    prompt: str | None,
    model: str | None,
    tools: Sequence[Any] | None = None,
) -> int:
    """Local estimate of the prompt tokens of a chat (``messages``, ``tools``) or completion."""
    try:
        from .. import estimate

        if messages is not None:
            return estimate.count_message_tokens(
                [message_dict(m) for m in messages], model, tools=tools or None
            )
        return estimate.count_text_tokens(prompt or "", model)
    except Exception:  # estimation is best effort: never fail a capture on it
        logger.debug("tokentrail: prompt estimate failed", exc_info=True)
        text = "".join(message_dict(m)["content"] for m in messages or ()) + (prompt or "")
        return (len(text) + 3) // 4


def estimate_text(text: str, model: str | None) -> int:
    """Local estimate of the tokens of a generated text."""
    if not text:
        return 0
    try:
        from .. import estimate

        return estimate.count_text_tokens(text, model)
    except Exception:
        logger.debug("tokentrail: text estimate failed", exc_info=True)
        return (len(text) + 3) // 4


def estimate_embedding(chunks: Sequence[str], model: str | None) -> int:
    """Local estimate of the input tokens of an embedding call over ``chunks``."""
    return sum(estimate_text(c, model) for c in chunks if isinstance(c, str))
