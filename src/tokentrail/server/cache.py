"""A small cache where concurrent askers of one key share one computation.

The dashboard and API clients ask the same questions many times a second; each answer is
a scan of the ``usage`` table. An answer is:

* reused for ``ttl`` seconds;
* after that, reused while the data has not changed since it was computed (``stamp()``,
  e.g. the database files' sizes and modification times, returns what it returned then),
  for up to ``max_age`` seconds so that relative ranges ("7d", "today") move on;
* when the data has changed, still served for up to ``stale_for`` seconds after it was
  computed while one background thread computes its successor (stale-while-revalidate):
  a burst of new calls costs each key one recomputation, never a wait in the request;
* older than that, recomputed in the request. Concurrent askers of a key being computed
  wait for that one computation instead of starting their own scan.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, cast

__all__ = ["TTLCache"]

T = TypeVar("T")


class _Entry:
    __slots__ = ("born", "done", "error", "expires", "refreshing", "stale", "stamp", "value")

    def __init__(self, stamp: Hashable) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None
        self.expires = 0.0
        self.born = time.monotonic()  # when its computation started
        self.stamp = stamp
        self.refreshing = False
        self.stale = False  # served after its data changed, while a successor is computed


class TTLCache:
    """``get(key, compute)``: a fresh (or briefly stale) value, computed once across threads."""

    def __init__(
        self,
        ttl: float = 1.0,
        max_entries: int = 2048,
        *,
        stamp: Callable[[], Hashable] | None = None,
        max_age: float = 30.0,
        stale_for: float = 0.0,
        workers: int = 2,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.max_age = max_age
        self.stale_for = stale_for
        self._stamp = stamp
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._entries: dict[Hashable, _Entry] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.stale_hits = 0
        self.misses = 0

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The value of ``key``; ``compute()`` runs when there is none usable."""
        return self.fetch(key, compute)[0]

    def fetch(self, key: Hashable, compute: Callable[[], T]) -> tuple[T, bool]:
        """``(value, stale)``: ``stale`` when the data changed and a newer value is coming."""
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and not entry.done.is_set():
            return cast(T, self._result(entry, hit=True)), False  # being computed: wait
        usable = self._usable(key, entry, compute, stamp_ok=True)
        if usable is not None:
            return cast(T, self._result(usable, hit=True)), usable.stale
        return self._compute(key, compute, entry), False

    def peek(
        self, key: Hashable, compute: Callable[[], Any], *, stamp_ok: bool = True
    ) -> tuple[bool, Any, bool]:
        """``(True, value, stale)`` when ``fetch`` would answer without computing or waiting.

        For callers that must not block (an event loop): on ``(False, None, False)`` they
        call ``fetch`` in a thread. ``stamp_ok=False`` when ``stamp()`` itself may block.
        """
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or not entry.done.is_set():
            return False, None, False
        usable = self._usable(key, entry, compute, stamp_ok=stamp_ok)
        if usable is None:
            return False, None, False
        return True, self._result(usable, hit=True), usable.stale

    def _usable(
        self, key: Hashable, entry: _Entry | None, compute: Callable[[], Any], *, stamp_ok: bool
    ) -> _Entry | None:
        """``entry`` if it may be served now (scheduling its refresh if stale), else None."""
        if entry is None or entry.error is not None:
            return None
        now = time.monotonic()
        if entry.expires > now:
            return entry
        if not stamp_ok:
            return None
        stamp = self._stamp() if self._stamp is not None else None
        age = now - entry.born
        if stamp is not None and stamp == entry.stamp and age < self.max_age:
            entry.expires = now + self.ttl  # unchanged data: look again after ttl
            return entry
        if age < self.stale_for:
            entry.stale = True
            self._refresh(key, entry, compute)
            with self._lock:
                self.stale_hits += 1
            return entry
        return None

    def _result(self, entry: _Entry, *, hit: bool) -> Any:
        entry.done.wait()
        if hit:
            with self._lock:
                self.hits += 1
        if entry.error is not None:
            raise entry.error
        return entry.value

    def _compute(self, key: Hashable, compute: Callable[[], T], seen: _Entry | None) -> T:
        with self._lock:
            current = self._entries.get(key)
            if current is not None and current is not seen and not current.done.is_set():
                owner = False  # another request is computing it right now: wait for it
                entry = current
            else:
                owner = True
                self.misses += 1
                if len(self._entries) >= self.max_entries:
                    self._evict(time.monotonic())
                entry = _Entry(None)
                self._entries[key] = entry
        if owner:
            self._fill(key, entry, compute)
        value: T = self._result(entry, hit=not owner)
        return value

    def _fill(self, key: Hashable, entry: _Entry, compute: Callable[[], Any]) -> None:
        try:
            entry.stamp = self._stamp() if self._stamp is not None else None
            entry.value = compute()
        except BaseException as exc:
            entry.error = exc
            with self._lock:  # errors are not kept
                if self._entries.get(key) is entry:
                    del self._entries[key]
        finally:
            entry.expires = time.monotonic() + self.ttl
            entry.done.set()

    def _refresh(self, key: Hashable, stale: _Entry, compute: Callable[[], Any]) -> None:
        with self._lock:
            if stale.refreshing:
                return
            stale.refreshing = True
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="tt-cache")
            pool = self._pool

        def job() -> None:
            fresh = _Entry(None)
            self._fill(key, fresh, compute)
            with self._lock:
                if fresh.error is None and self._entries.get(key) is stale:
                    self._entries[key] = fresh
                stale.refreshing = False

        pool.submit(job)

    def clear(self) -> None:
        """Forget every value."""
        with self._lock:
            self._entries.clear()

    def close(self) -> None:
        """Stop the background refresh threads."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def _evict(self, now: float) -> None:
        old = now - max(self.max_age, self.stale_for)
        for key in [k for k, e in self._entries.items() if e.done.is_set() and e.born <= old]:
            del self._entries[key]
        if len(self._entries) >= self.max_entries:  # all recent: drop the oldest half
            for key in list(self._entries)[: self.max_entries // 2]:
                if self._entries[key].done.is_set():
                    del self._entries[key]
