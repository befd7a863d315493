"""One LlamaIndex model call in flight, and who it is for.

A :class:`Call` is created at the call's start event (in the caller's context, where its
attribution and ``track()`` runs are taken) and lives until its end, exception, or the
garbage collection of an abandoned stream. Nothing here imports LlamaIndex.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from ..context import Attribution, CallContext
from ..errors import BudgetExceededError

__all__ = ["Call", "Kind", "Source", "tag_attribution"]

Kind = Literal["chat", "completion", "embedding"]
#: Which path saw the call start: instrumentation events or a legacy callback handler.
Source = Literal["events", "callback"]

_FIELD_TAGS = frozenset({"user_id", "session_id", "operation", "tags"})


def tag_attribution(tags: Mapping[str, Any] | None) -> Attribution | None:
    """Attribution from LlamaIndex ``instrument_tags``.

    ``user_id``, ``session_id`` and ``operation`` set those fields, ``tags`` (a string or a
    list) adds tags, and every other key goes to the record's metadata.

    Example::

        >>> tag_attribution({"user_id": "u1", "tags": "beta", "tenant": "acme"}).metadata
        {'tenant': 'acme'}
    """
    if not tags:
        return None
    raw_tags = tags.get("tags")
    if isinstance(raw_tags, str):
        tag_list: Sequence[str] = (raw_tags,)
    elif isinstance(raw_tags, (list, tuple, set, frozenset)):
        tag_list = [str(t) for t in raw_tags]
    else:
        tag_list = ()
    metadata = {k: v for k, v in tags.items() if k not in _FIELD_TAGS}
    return Attribution.of(
        tags.get("user_id"), tags.get("session_id"), tags.get("operation"), tag_list, metadata
    )


@dataclass(slots=True, eq=False)
class Call:
    """One model or embedding call between its start and its end."""

    span: str
    kind: Kind
    source: Source
    ctx: CallContext
    model: str | None
    provider: str | None
    #: Start, wall clock (the row's ``ts``) and ``perf_counter`` (its latency).
    ts: datetime
    t0: float
    parent_run_id: str | None = None
    trace_id: str | None = None
    messages: Sequence[Any] | None = None
    prompt: str | None = None
    tools: Sequence[Any] | None = None
    #: The outer call this one runs inside (its provider call is this one).
    parent: Call | None = None
    #: Nested calls started inside this one; when > 0 this call records nothing itself.
    children: int = field(default=0, init=False)
    reservation: Any = field(default=None, init=False)
    #: The budget refusal taken at start, raised by the callback handler when one is present.
    refusal: BudgetExceededError | None = field(default=None, init=False)
    #: The last streamed response, and the last one whose raw payload carried usage.
    last: Any = field(default=None, init=False)
    usage_response: Any = field(default=None, init=False)
    streamed: bool = field(default=False, init=False)
    #: A legacy callback handler saw this call too (it only guards it then).
    linked: bool = field(default=False, init=False)
    #: The legacy callback's event id, when a callback handler started this call.
    event_id: str | None = field(default=None, init=False)
    done: bool = field(default=False, init=False)

    @property
    def run_id(self) -> str:
        """The row's run id: the call's span id."""
        return self.span

    def __repr__(self) -> str:
        return f"<Call {self.kind} {self.span} source={self.source} done={self.done}>"
