"""The writer's DuckDB: one in-memory instance, the database file attached per session.

The file is attached only while a batch is written, so other processes and notebooks can
use it in between; detaching checkpoints it and releases DuckDB's lock on it.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path
from typing import Any

from .connect import attach, yield_to_readers
from .integrity import SAFE_CONFIG

__all__ = ["ALIAS", "Engine", "is_interrupted", "is_out_of_memory"]

logger = logging.getLogger("tokentrail")

#: The database file's name inside the in-memory instance.
ALIAS = "tokentrail_db"
# DuckDB's buffer pool for a writing session. Its default (80% of RAM) lets the checkpoint
# at detach keep the table's pages cached, so a writer's RSS grew with the table; 64 MB
# keeps it flat for the same CPU. The JSON reader needs ~32 MB at once: on an
# out-of-memory error the limit doubles (up to the cap).
MEMORY_LIMIT_MB = 64
MEMORY_LIMIT_CAP_MB = 1024

# Instances inherited from the parent by a forked child: never used nor destroyed there.
_FORKED: list[Any] = []


def is_interrupted(exc: BaseException) -> bool:
    """Whether a DuckDB error says the query was interrupted (its transaction rolled back).

    DuckDB's own exit hooks interrupt running queries; they are registered when ``duckdb``
    is first imported, usually after ours, so they run first at interpreter exit and can
    stop the batch our background thread is writing just before ``close()`` flushes.
    """
    interrupt = getattr(sys.modules.get("duckdb"), "InterruptException", None)
    return interrupt is not None and isinstance(exc, interrupt)


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether a DuckDB error says the memory limit was too tight."""
    oom = getattr(sys.modules.get("duckdb"), "OutOfMemoryException", None)
    return (oom is not None and isinstance(exc, oom)) or "Out of Memory" in str(exc)


class Engine:
    """This store's in-memory DuckDB instance, created on first use."""

    def __init__(self) -> None:
        self.duck: Any = None
        self.memory_limit_mb = MEMORY_LIMIT_MB
        self._limit_set_mb = 0  # the limit set on ``duck`` (0: none yet)

    def open(self, path: Path, timeout: float) -> Any:
        """Attach the database file (waiting up to ``timeout`` for its lock) and use it.

        Raises :class:`~tokentrail.errors.StoreError` when it cannot be attached.
        """
        yield_to_readers(path)
        con = self._instance()
        if self._limit_set_mb != self.memory_limit_mb:  # a SET costs ~1 ms
            con.execute(f"SET memory_limit = '{self.memory_limit_mb}MB'")
            self._limit_set_mb = self.memory_limit_mb
        attach(con, path, ALIAS, timeout=timeout)
        con.execute(f"USE {ALIAS}")
        return con

    def detach(self) -> None:
        """Detach the database file (checkpoint, release the lock); never raises."""
        con = self.duck
        if con is None:
            return
        try:
            con.execute("USE memory")
            con.execute(f"DETACH DATABASE IF EXISTS {ALIAS}")
        except Exception:
            # Closing the whole instance releases the file whatever state it is in.
            logger.debug("tokentrail: detach failed; closing DuckDB", exc_info=True)
            self.drop()

    def drop(self) -> None:
        """Close the instance (a new one is made on next use)."""
        con, self.duck = self.duck, None
        self._limit_set_mb = 0
        if con is not None:
            with contextlib.suppress(Exception):
                con.close()

    def raise_memory_limit(self) -> bool:
        """Double the memory limit; False when it is at its cap already."""
        if self.memory_limit_mb >= MEMORY_LIMIT_CAP_MB:
            return False
        self.memory_limit_mb *= 2
        logger.debug("tokentrail: DuckDB memory limit raised to %d MB", self.memory_limit_mb)
        return True

    def forget_after_fork(self) -> None:
        """In a forked child: let go of the parent's instance without closing it."""
        if self.duck is not None:
            _FORKED.append(self.duck)
        self.duck = None
        self._limit_set_mb = 0

    def _instance(self) -> Any:
        con = self.duck
        if con is None:
            import duckdb

            con = duckdb.connect(":memory:", config=SAFE_CONFIG)
            # One DuckDB thread: batches are small, and the app keeps the other cores.
            con.execute("SET threads TO 1")
            self.duck = con
        return con
