"""File locks: whether a spool writer is alive, and the store lock.

A process holds an exclusive ``flock`` on ``<token>.lock`` for its whole life. The kernel
drops the lock when the process dies, however it dies, so another process can tell a dead
writer's segments (lock free) from a live one's (lock held) without trusting pids.

The *store lock* (``<db>.lock``) is held shared by every batch a writer stores and
exclusively by ``forget``/``prune`` while they rewrite the database file, so no batch
lands in the file that is being replaced.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

from ..errors import StoreError

try:  # POSIX; on other systems a dead writer's segments are left for a later version.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["CAN_LOCK", "lock", "open_locked", "store_lock"]

#: Whether this system has ``flock`` (without it, no writer's segments look orphaned).
CAN_LOCK = fcntl is not None


def lock(fd: int, blocking: bool) -> bool:
    """Take the exclusive lock on ``fd``; False when another process holds it."""
    if fcntl is None:  # pragma: no cover - Windows
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except OSError:
        return False
    return True


def open_locked(path: Path) -> int:
    """Create ``path``, lock it, and return the descriptor of the file still at ``path``.

    Another process's orphan scan may remove the lock file between our ``open`` and
    ``flock`` (it looks like one a writer left behind); a lock on a removed file protects
    nothing, so the file is opened and locked again until the two match.
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        lock(fd, blocking=True)
        try:
            held, named = os.fstat(fd), os.stat(path)
        except FileNotFoundError:
            os.close(fd)
            continue
        if (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino):
            return fd
        os.close(fd)


@contextlib.contextmanager
def store_lock(db: Path, *, shared: bool = False, timeout: float = 30.0) -> Iterator[None]:
    """Hold the store lock of ``db`` (see the module docstring) for the block.

    Raises :class:`StoreError` (worded as DuckDB words a lock conflict, so a writer retries
    it quietly) when it is still held by another process after ``timeout`` seconds.
    """
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    path = db.with_name(db.name + ".lock")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    except OSError:
        yield  # a read-only directory: nothing can rewrite the file there either
        return
    try:
        mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            try:
                fcntl.flock(fd, mode)
                break
            except OSError:
                if time.monotonic() >= deadline:
                    raise StoreError(
                        f"Conflicting lock is held on {path}: another process is "
                        f"rewriting {db} (tokentrail forget or prune)"
                    ) from None
                time.sleep(0.01)
        yield
    finally:
        os.close(fd)  # releases the lock
