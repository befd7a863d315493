"""The tracker's public surface, as the modules around it see it.

Integrations, the live counter and the notebook display are written against these
protocols instead of :class:`~tokentrail.tracker.Tracker` itself: the tracker imports
them (lazily, in its factory methods), so they must not import it back. ``Tracker``
satisfies every protocol here; tests can hand them any object that does.

The capture contract an integration follows for one model call::

    context = target.call_context(explicit)         # at the start, in the caller's context
    reservation = target.preflight(request) if target.guarded else None   # may raise
    ...                                              # the call runs
    if target.watching_streams:                      # per streamed piece, while in flight
        target.streamed(run_id, text, model)
    target.capture(record, context=context, reservation=reservation)      # never raises
    target.release(reservation)                      # instead, when no record will come
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .budget import PreflightRequest, Reservation
    from .context import Attribution, CallContext
    from .records import UsageRecord
    from .store.paths import Database

__all__ = ["CaptureTarget", "RecordSource", "TrackerView"]


class CaptureTarget(Protocol):
    """What an integration hands its calls to (``Tracker`` is one)."""

    @property
    def defaults(self) -> Attribution:
        """Attribution applied to every call unless something more specific sets it."""
        ...

    @property
    def guarded(self) -> bool:
        """True when any budget is set: only then is a pre-flight worth building."""
        ...

    def call_context(self, explicit: Attribution | None = None) -> CallContext:
        """Snapshot the attribution and active ``track()`` blocks for a call starting now."""
        ...

    def preflight(self, request: PreflightRequest) -> Reservation | None:
        """Reserve the call's worst case, or raise ``BudgetExceededError``."""
        ...

    def release(self, reservation: Reservation | None) -> None:
        """Give back a reservation whose call will get no record. Never raises."""
        ...

    def capture(
        self,
        record: UsageRecord,
        *,
        context: CallContext | None = None,
        reservation: Reservation | None = None,
    ) -> UsageRecord:
        """Take one finished call: attribute, price, settle, store, notify. Never raises."""
        ...

    @property
    def watching_streams(self) -> bool:
        """True while someone follows streamed calls piece by piece: only then report them."""
        ...

    def streamed(self, run_id: str, text: str, model: str | None) -> None:
        """A call in flight (``run_id``, as its record will say) streamed ``text``. Never raises."""
        ...


class RecordSource(Protocol):
    """Something that tells subscribers about every record it captures."""

    def subscribe(
        self,
        listener: Callable[[UsageRecord], None],
        on_chunk: Callable[[str, str, str | None], None] | None = None,
    ) -> Callable[[], None]:
        """Call ``listener(record)`` for each captured call, and ``on_chunk(run_id, text,
        model)`` for each piece a call in flight streams; returns an unsubscribe."""
        ...


class TrackerView(Protocol):
    """What the notebook display of a tracker reads."""

    @property
    def path(self) -> Database:
        """The DuckDB file, or the PostgreSQL database."""
        ...

    @property
    def defaults(self) -> Attribution:
        """The tracker's default attribution."""
        ...

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Write pending records; True when all were written."""
        ...

    def budget_status(self) -> Sequence[Any]:
        """One status per budget window in force."""
        ...
