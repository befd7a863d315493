"""When the background writer looks at the spool, and when a look stores a batch.

A batch costs ~30 ms of CPU and rewrites ~800 KB of the database file whatever its size,
so a few waiting records are left in the spool (durable already) for up to ``max_delay``
seconds: an app making a call a second then pays one batch per ``max_delay`` seconds
instead of one per second. Looks start ``interval`` seconds apart.
"""

from __future__ import annotations

__all__ = ["BATCH_ROWS", "Cadence"]

#: A batch is stored as soon as this many records wait; fewer wait up to ``max_delay``.
BATCH_ROWS = 1_000


class Cadence:
    """The writer's clock: arithmetic on ``time.monotonic()`` readings. ``interval`` and
    ``max_delay`` are passed in each time: the store's owner may change them any time."""

    def __init__(self) -> None:
        #: When the writer first saw records wait (``None``: nothing waits).
        self.waiting_since: float | None = None

    def worth_a_batch(self, waiting: int, now: float, max_delay: float) -> bool:
        """Whether a look at ``now`` stores the ``waiting`` records.

        Yes when :data:`BATCH_ROWS` wait or the first seen has waited ``max_delay``
        seconds; a batch costs the same for 1 row as for 1,000.
        """
        if not waiting:
            self.waiting_since = None
            return False
        if waiting >= BATCH_ROWS:
            return True
        if self.waiting_since is None:
            self.waiting_since = now
        return now - self.waiting_since >= max_delay

    def taken(self) -> float | None:
        """A batch took what waited: the clock starts over; returns when it had started."""
        since, self.waiting_since = self.waiting_since, None
        return since

    def kept(self, since: float | None, now: float) -> None:
        """A batch failed: its records wait still, since ``since`` (or ``now``), so the
        next look tries again at once instead of ``max_delay`` later."""
        if self.waiting_since is None:
            self.waiting_since = now if since is None else since

    @staticmethod
    def next_wait(started: float, stored: bool, now: float, interval: float) -> float:
        """Seconds until the next look, the last one having started at ``started``.

        Counted from the start of the last look, not its end: under sustained load a batch
        takes a good part of the interval, and waiting a whole interval after it would let
        the backlog grow. After a failed look (the file busy or unusable) the writer waits
        a whole interval.
        """
        if not stored:
            return interval
        return max(0.0, started + interval - now)
