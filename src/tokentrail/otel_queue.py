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
from typing import Generic, TypeVar

__all__ = ["Background"]

logger = logging.getLogger("tokentrail")

T = TypeVar("T")


class Background(Generic[T]):
    """Run ``work(item)`` for every item :meth:`put`, on one daemon thread; never raises."""

    def __init__(self, work: Callable[[T], object], name: str) -> None:
        self._work = work
        self._name = name
        self._queue: queue.SimpleQueue[T] = queue.SimpleQueue()
        self._done = threading.Condition()
        self._pending = 0
        self._pid = -1  # the process whose thread runs the queue (none yet)

    def put(self, item: T) -> None:
        """Queue ``item``; the thread starts on first use (again in a forked child)."""
        if self._pid != os.getpid():
            self._start()
        with self._done:
            self._pending += 1
        self._queue.put(item)

    def _start(self) -> None:
        with self._done:
            if self._pid == os.getpid():
                return
            first = self._pid == -1
            self._pid = os.getpid()
            self._pending = 0  # a forked child does not inherit the parent's thread
            self._queue = queue.SimpleQueue()
        threading.Thread(target=self._run, name=self._name, daemon=True).start()
        if first:
            atexit.register(self.flush, 5.0)

    def _run(self) -> None:
        items = self._queue
        while True:
            item = items.get()
            try:
                self._work(item)
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
            while self._pending:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._done.wait(left)
        return True
