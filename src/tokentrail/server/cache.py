"""A small time-to-live cache where concurrent askers of one key share one computation.

The dashboard and API clients ask the same questions many times a second; each answer is
a scan of the ``usage`` table. Answers are kept for ``ttl`` seconds (so data is at most
that old), and while one request computes a key the others asking for it wait for that
result instead of starting their own scan.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

__all__ = ["TTLCache"]

T = TypeVar("T")


class _Slot:
    __slots__ = ("done", "error", "expires", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None
        self.expires = 0.0


class TTLCache:
    """``get(key, compute)``: a fresh value or the one being computed by another thread."""

    def __init__(self, ttl: float = 1.0, max_entries: int = 2048) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._slots: dict[Hashable, _Slot] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The cached value of ``key``, computing it (once across threads) when stale."""
        now = time.monotonic()
        with self._lock:
            slot = self._slots.get(key)
            if slot is not None and (not slot.done.is_set() or slot.expires > now):
                self.hits += 1
                owner = False
            else:
                self.misses += 1
                if len(self._slots) >= self.max_entries:
                    self._evict(now)
                slot = _Slot()
                self._slots[key] = slot
                owner = True
        if owner:
            try:
                slot.value = compute()
            except BaseException as exc:
                slot.error = exc
                with self._lock:  # errors are not cached
                    if self._slots.get(key) is slot:
                        del self._slots[key]
            finally:
                slot.expires = time.monotonic() + self.ttl
                slot.done.set()
        else:
            slot.done.wait()
        if slot.error is not None:
            raise slot.error
        value: T = slot.value
        return value

    def clear(self) -> None:
        """Forget every value."""
        with self._lock:
            self._slots.clear()

    def _evict(self, now: float) -> None:
        for key in [k for k, s in self._slots.items() if s.done.is_set() and s.expires <= now]:
            del self._slots[key]
        if len(self._slots) >= self.max_entries:  # all fresh: drop the oldest half
            for key in list(self._slots)[: self.max_entries // 2]:
                if self._slots[key].done.is_set():
                    del self._slots[key]
