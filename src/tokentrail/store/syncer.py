"""Group sync: a background thread that makes spooled records durable every few ms.

With ``durability="interval"`` (the default) a record is in the page cache when
``record()`` returns, safe if the process is killed, and on the disk itself at most
:data:`SYNC_EVERY` seconds later: the window a power cut can lose. One ``fdatasync`` per
segment per tick, whatever the number of records, off the caller's thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from .segments import run_sync

__all__ = ["SYNC_EVERY", "Syncer"]

logger = logging.getLogger("tokentrail")

#: Seconds between group syncs while records are being written (a power cut loses at
#: most the records of this window).
SYNC_EVERY = 0.1

#: What one tick syncs: descriptors to fdatasync and close, a directory to fsync, and
#: whether a segment is still open (ticks go on) or not (the thread sleeps until kicked).
Work = tuple[list[int], Path | None, bool]


class Syncer:
    """Calls ``collect`` every :data:`SYNC_EVERY` seconds while a segment is open and
    syncs what it returns; sleeps when nothing is open until :meth:`kick`."""

    def __init__(self, collect: Callable[[], Work]) -> None:
        self._collect = collect
        self._kicked = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def kick(self) -> None:
        """A segment was opened: tick until it is closed and synced."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="tokentrail-sync", daemon=True)
            self._thread.start()
        self._kicked.set()

    def tick(self) -> bool:
        """Sync what waits now; True while a segment is open."""
        fds, directory, open_ = self._collect()
        run_sync(fds, directory)
        return open_

    def stop(self) -> None:
        """Sync what waits and end the thread."""
        self._stopped.set()
        self._kicked.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)
        self._thread = None
        self._stopped.clear()
        self.tick()

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._kicked.wait()
            self._kicked.clear()
            while not self._stopped.wait(SYNC_EVERY):
                try:
                    if not self.tick():
                        break
                except Exception:  # never end the thread: records stay in the page cache
                    logger.debug("tokentrail: spool sync failed", exc_info=True)
