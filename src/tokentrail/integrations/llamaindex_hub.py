"""Process-wide state of the LlamaIndex integration: the span tree and the recorders in use.

LlamaIndex has one root dispatcher per process, so one event handler and one span handler
serve every tracker. The :class:`Hub` keeps the parent of every open span (to tell a nested
call from a new one, and to give each row its parent and trace), one recorder per tracker in
use, and installs the handlers only while a recorder is in use. Nothing here imports
LlamaIndex: installing is a function the handlers module passes in.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from ..protocols import CaptureTarget

__all__ = ["Hub", "Member"]


class Member(Protocol):
    """What the hub needs of a recorder."""

    @property
    def tracker(self) -> CaptureTarget:
        """The tracker it records into."""

    @property
    def in_use(self) -> bool:
        """True while a handle, a ``track()`` block or a callback handler uses it."""

    @property
    def busy(self) -> bool:
        """True while calls are in flight."""


R = TypeVar("R", bound=Member)


class Hub(Generic[R]):
    """The span tree, the recorders in use (one per tracker), and the installed handlers."""

    def __init__(
        self,
        make: Callable[[CaptureTarget, Hub[R]], R],
        install: Callable[[], None],
        uninstall: Callable[[], None],
    ) -> None:
        self._make = make
        self._install = install
        self._uninstall = uninstall
        self.lock = threading.RLock()
        #: Open spans: id -> (parent id, instance whose method the span wraps).
        self.spans: dict[str, tuple[str | None, Any]] = {}
        self._by_tracker: dict[int, R] = {}
        #: The recorders that receive events (a tuple: read without the lock).
        self.recorders: tuple[R, ...] = ()
        self._installed = False

    def recorder(self, tracker: CaptureTarget) -> R:
        """The tracker's recorder, installing the handlers if needed. Call under ``lock``."""
        rec = self._by_tracker.get(id(tracker))
        if rec is None or rec.tracker is not tracker:
            rec = self._make(tracker, self)
            self._by_tracker[id(tracker)] = rec
            self.recorders = (*self.recorders, rec)
        if not self._installed:
            self._install()
            self._installed = True
        return rec

    def settle_idle(self, rec: R) -> None:
        """Drop a recorder nobody uses once its last call is done; uninstall when none is left."""
        if rec.in_use or rec.busy:
            return
        with self.lock:
            if rec.in_use or rec.busy or self._by_tracker.get(id(rec.tracker)) is not rec:
                return
            del self._by_tracker[id(rec.tracker)]
            self.recorders = tuple(r for r in self.recorders if r is not rec)
            if not self.recorders and self._installed:
                self._installed = False
                self._uninstall()
                self.spans.clear()
