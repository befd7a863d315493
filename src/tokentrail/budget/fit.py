"""``fit_messages``: drop the oldest turns of a conversation until the request fits."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from .. import estimate as est

__all__ = ["fit_messages"]

logger = logging.getLogger("tokentrail")

M = TypeVar("M", bound=Mapping[str, Any])


def _role(message: Any) -> str:
    role = message.get("role") if isinstance(message, Mapping) else getattr(message, "role", None)
    if role is None and not isinstance(message, Mapping):
        role = getattr(message, "type", None)  # LangChain messages: "human", "ai", "system"
    return str(role or "")


def fit_messages(
    messages: Sequence[M],
    *,
    model: str | None = None,
    max_input_tokens: int,
    keep_system: bool = True,
    keep_last: int = 2,
    tools: Sequence[Any] | None = None,
) -> list[M]:
    """The conversation with its oldest turns dropped until its prompt fits.

    A turn is a user message and everything after it up to the next user message, so a
    tool call is never separated from its result. System messages are kept when
    ``keep_system``; the last ``keep_last`` messages are always kept (extended back to the
    start of their turn's tool exchange). Tokens are counted like a real request
    (:func:`tokentrail.estimate.count_message_tokens`, tools included). When even the
    kept messages do not fit, they are returned anyway and a warning is logged: check
    with ``count_message_tokens`` if you must not send it. The input is not modified.

    Example::

        fit_messages(history, model="gpt-4o", max_input_tokens=8_000)
    """
    items = list(messages)
    if max_input_tokens <= 0 or not items:
        return items
    costs = [est.message_tokens(m, model) for m in items]
    fixed = est.TOKENS_REPLY_PRIMING + (est.count_tools_tokens(tools, model) if tools else 0)
    total = fixed + sum(costs)
    if total <= max_input_tokens:
        return items

    protected = [False] * len(items)
    if keep_system:
        for i, m in enumerate(items):
            if _role(m) in ("system", "developer"):
                protected[i] = True
    tail = max(0, len(items) - max(0, keep_last))
    # Tool results in the kept tail need the assistant message that asked for them.
    while 0 < tail < len(items) and _role(items[tail]) in ("tool", "function"):
        tail -= 1
    for i in range(tail, len(items)):
        protected[i] = True

    # Turns of droppable messages, oldest first: each starts at a user message.
    turns: list[list[int]] = []
    for i, m in enumerate(items):
        if protected[i]:
            continue
        if not turns or _role(m) in ("user", "human") or (turns[-1] and turns[-1][-1] != i - 1):
            turns.append([i])
        else:
            turns[-1].append(i)

    dropped: set[int] = set()
    for turn in turns:
        if total <= max_input_tokens:
            break
        dropped.update(turn)
        total -= sum(costs[i] for i in turn)
    if total > max_input_tokens:
        logger.warning(
            "tokentrail: fit_messages kept %d tokens, above max_input_tokens=%d",
            total,
            max_input_tokens,
        )
    return [m for i, m in enumerate(items) if i not in dropped]
