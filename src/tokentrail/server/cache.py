"""A small cache where concurrent askers of one key share one computation.

The dashboard and API clients ask the same questions many times a second; each answer is
a scan of the ``usage`` table. An answer is reused for ``ttl`` seconds; after that it is
still reused if the data has not changed since it was computed (``stamp()``, e.g. the
database files' sizes and modification times, returns what it returned then), for up to
``max_age`` seconds so that relative ranges ("7d", "today") move on. While one request
computes a key, the others asking for it wait for that result instead of starting their
own scan.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

__all__ = ["TTLCache"]

T = TypeVar("T")


class _Slot:
    __slots__ = ("born", "done", "error", "expires", "stamp", "value")

    def __init__(self, stamp: Hashable) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None
        self.expires = 0.0
        self.born = time.monotonic()
        self.stamp = stamp


class TTLCache:
    """``get(key, compute)``: a fresh value or the one being computed by another thread."""

    def __init__(
        self,
        ttl: float = 1.0,
        max_entries: int = 2048,
        *,
        stamp: Callable[[], Hashable] | None = None,
        max_age: float = 30.0,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.max_age = max_age
        self._stamp = stamp
        self._slots: dict[Hashable, _Slot] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The cached value of ``key``, computing it (once across threads) when stale."""
        now = time.monotonic()
        stamp: Hashable = None
        with self._lock:
            slot = self._slots.get(key)
            fresh = slot is not None and (not slot.done.is_set() or slot.expires > now)
        if not fresh and self._stamp is not None:
            stamp = self._stamp()  # outside the lock: it may touch the disk
            if slot is not None and slot.error is None and slot.stamp == stamp:
                fresh = now - slot.born < self.max_age
                if fresh:
                    slot.expires = now + self.ttl  # unchanged data: look again after ttl
        with self._lock:
            current = self._slots.get(key)
            if fresh and current is slot and slot is not None:
                self.hits += 1
                owner = False
            elif (
                current is not None
                and current is not slot
                and (not current.done.is_set() or current.expires > now)
            ):
                slot, owner = current, False  # another thread just started it
                self.hits += 1
            else:
                self.misses += 1
                if len(self._slots) >= self.max_entries:
                    self._evict(now)
                slot = _Slot(stamp)
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
        stale = now - self.max_age
        for key in [k for k, s in self._slots.items() if s.done.is_set() and s.born <= stale]:
            del self._slots[key]
        if len(self._slots) >= self.max_entries:  # all fresh: drop the oldest half
            for key in list(self._slots)[: self.max_entries // 2]:
                if self._slots[key].done.is_set():
                    del self._slots[key]
