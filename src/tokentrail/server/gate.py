"""Take turns with writers: how the server's reads leave the DuckDB file to other processes.

DuckDB's file lock has no queue, and a process recording calls retries its batch with a
back-off of up to 0.25 s. A server under load (two reads at a time, overlapping, one
after another) can hold the file for seconds and starve those writers: their calls wait
in the spool and the dashboard stops moving. The gate lets at most ``slots`` reads run at
once and, once the file has been held for ``hold`` seconds in a row, lets the running
reads finish and keeps it free for ``pause`` seconds before the next one opens it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["ReadGate"]


class ReadGate:
    """``with gate.reading(): ...`` around every time the server opens the database."""

    def __init__(self, slots: int = 2, hold: float = 1.0, pause: float = 0.3) -> None:
        self.slots = slots
        self.hold = hold
        self.pause = pause
        self._cond = threading.Condition()
        self._active = 0
        self._held_since = 0.0
        self._reopen_at = 0.0
        self.pauses = 0  # breaks given to writers (for tests and benchmarks)

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Wait for a turn, run the block, give the turn back."""
        self._enter()
        try:
            yield
        finally:
            self._leave()

    def _enter(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                if now < self._reopen_at:  # writers' turn
                    self._cond.wait(self._reopen_at - now)
                elif self._active and now - self._held_since >= self.hold:
                    self._cond.wait(0.05)  # held long enough: no new reads until it is free
                elif self._active >= self.slots:
                    self._cond.wait(0.05)
                else:
                    break
            if self._active == 0:
                self._held_since = now
            self._active += 1

    def _leave(self) -> None:
        with self._cond:
            self._active -= 1
            now = time.monotonic()
            if self._active == 0 and now - self._held_since >= self.hold:
                self._reopen_at = now + self.pause
                self.pauses += 1
            self._cond.notify_all()
