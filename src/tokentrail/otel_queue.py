"""``Background``: one daemon thread that runs a function on each queued item, in order.

The OpenTelemetry spans and measurements of a call are made here, off the call's path: the
caller only queues the record with its context (a couple of microseconds) while the SDK's
attribute checks and metric aggregation (tens of microseconds) run on this thread.
``flush()`` waits until everything queued is done; it runs at interpreter exit too, before
the OpenTelemetry SDK's own exit hook (registered earlier, so run later) exports.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar, cast

__all__ = ["Background"]

logger = logging.getLogger("tokentrail")

T = TypeVar("T")
_STOP = object()  # ends the thread (queued by close())


class Background(Generic[T]):
    """Run ``work(item)`` for every item :meth:`put`, on one daemon thread; never raises."""

    def __init__(self, work: Callable[[T], object], name: str) -> None:
        self._work = work
        self._name = name
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._done = threading.Condition()
        self._pending = 0
        self._pid = -1  # the process whose thread runs the queue (none yet)

    def put(self, item: T) -> None:
        """Queue ``item``; the thread starts on first use (again after :meth:`close` and in a
        forked child, which does not inherit the parent's thread)."""
        with self._done:  # one lock with close(): an item never lands behind the stop mark
            if self._pid != os.getpid():
                self._start()
            self._pending += 1
            self._queue.put(item)

    def _start(self) -> None:
        """Start the thread on a fresh queue (the lock is held)."""
        first = self._pid == -1  # -2: closed, its exit hook already registered
        if self._pid > 0:  # a forked child: the parent's thread and items are not here
            self._pending = 0
        self._pid = os.getpid()
        self._queue = queue.SimpleQueue()
        threading.Thread(
            target=self._run, args=(self._queue,), name=self._name, daemon=True
        ).start()
        if first:
            atexit.register(self.flush, 5.0)

    def _run(self, items: queue.SimpleQueue[object]) -> None:
        while True:
            item = items.get()
            if item is _STOP:
                return
            try:
                self._work(cast(T, item))
            except Exception:
                logger.exception("tokentrail: %s failed", self._name)
            with self._done:
                self._pending -= 1
                if not self._pending:
                    self._done.notify_all()

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until every queued item is done; False when ``timeout`` ran out first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._done:
            while self._pending > 0:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._done.wait(left)
        return True

    def close(self, timeout: float | None = 30.0) -> bool:
        """Finish what is queued and end the thread (a later :meth:`put` starts a new one)."""
        done = self.flush(timeout)
        with self._done:
            if self._pid == os.getpid():
                self._queue.put(_STOP)
                self._pid = -2  # no thread now; not -1: the exit hook is registered
        return done
