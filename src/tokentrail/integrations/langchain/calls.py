"""The LangChain model calls in flight, per tracker, and the root run of each run seen.

A call is opened by its start event and closed by its end (or error) event, which carries
no metadata: what the start said is kept here, keyed by LangChain's ``run_id``. Every
handler of one tracker shares the same table, so a call seen by two handlers (the same
handler attached twice, an explicit handler inside a ``track()`` block) is recorded once.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from ...context import CallContext

if TYPE_CHECKING:
    from ...budget import Reservation
    from ...protocols import CaptureTarget

__all__ = ["Call", "Calls", "calls_of", "every_registry", "registries_lock"]


@dataclass(slots=True)
class Call:
    """A model call in flight (between its start and end events)."""

    model: str | None
    provider: str | None
    ts: datetime  # when the call started (UTC)
    t0: float  # perf_counter at the start, for the latency
    context: CallContext
    reservation: Reservation | None
    run_id: str
    parent_run_id: str | None
    trace_id: str
    metadata: dict[str, Any]
    # Kept in memory only, for estimating a stream that reports no usage; never stored.
    messages: Any = None
    chat: bool = True
    # The streamed text pieces; created by the first token (most calls stream none).
    texts: list[str] | None = None
    last_chunk: Any = None
    # The asyncio task the call started in and our done-callback on it.
    watch: tuple[asyncio.Task[Any], Any] | None = None
    # LangChain's invocation_params dict: one object shared by the prompts of one batch.
    batch: Any = None


class Calls:
    """The calls in flight of one tracker and the root of every run seen (for trace ids).

    No lock: every access is one dict operation (``setdefault``, ``pop``, ``get``, ``copy``),
    which is atomic in CPython (and per dict in free-threaded builds), so two threads ending
    the same run cannot both get its call.
    """

    def __init__(self) -> None:
        self.calls: dict[UUID, Call] = {}
        self.roots: dict[UUID, UUID] = {}

    def root_of(self, run_id: UUID, parent_run_id: UUID | None) -> UUID:
        """The root run of ``run_id``: itself when it has no parent."""
        if parent_run_id is None:
            return run_id
        # A parent the handler never saw (handler attached to the model only) is the
        # best root we know.
        return self.roots.get(parent_run_id, parent_run_id)


_registries: weakref.WeakKeyDictionary[CaptureTarget, Calls] = weakref.WeakKeyDictionary()
#: Guards the per-tracker tables (this module's and ``track``'s).
registries_lock = threading.Lock()


def calls_of(tracker: CaptureTarget) -> Calls:
    """The table of calls in flight of ``tracker`` (created on first use)."""
    with registries_lock:
        found = _registries.get(tracker)
        if found is None:
            found = _registries[tracker] = Calls()
        return found


def every_registry() -> list[tuple[CaptureTarget, Calls]]:
    """Every tracker with its table (a snapshot)."""
    with registries_lock:
        return list(_registries.items())
