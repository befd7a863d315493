"""One batch: what the writer took from the spool, copied into DuckDB.

A batch opens a writing session on the database file, migrates it once, stores the ready
segments in groups (one transaction each, see ``ingest``), the lines kept in memory, and
the segments of processes that died, then detaches the file. Every failure is caught and
sorted: another process holding the file is retried quietly; a memory limit too tight is
raised and the batch goes again; anything else makes the store leave the database alone
for a while (records wait in the spool meanwhile).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..errors import StoreError
from .connect import is_lock_conflict
from .engine import ALIAS, Engine, is_interrupted, is_out_of_memory
from .ingest import insert_lines, insert_segment, insert_segments
from .locks import store_lock
from .migrate import migrate, schema_version
from .notices import Notices
from .recovery import Claim, cut_torn_tail, inspect, set_aside
from .schema import SCHEMA_VERSION

__all__ = ["Batches", "Stored", "Taken", "groups"]

logger = logging.getLogger("tokentrail")

# How long to leave the database alone after it proved unusable (corrupt, newer schema,
# no permission) before trying again.
RETRY_AFTER = 30.0
# Interrupted batches in a row retried quietly (DuckDB's exit hooks interrupt one); more
# than that and something keeps interrupting them: warned about like an unusable file.
MAX_INTERRUPTED = 3
# Rows stored per session before the file is detached (checkpointed) and attached again:
# DuckDB keeps what a session inserted in memory until it checkpoints, so a backlog is
# stored in sessions of bounded size (memory stays flat, readers get a turn in between).
SESSION_ROWS = 20_000
# Rows of ready segments stored in one transaction. From one DuckDB row group (122,880
# rows) on, DuckDB writes them straight into the file (not to the WAL and again at the
# checkpoint): about half the CPU per row.
GROUP_ROWS = 150_000

Segment = tuple[Path, int]


class Stored(Protocol):
    """The store's callback: a batch committed ``segments`` (and ``lines`` kept in memory);
    ``lost``: those among them whose files were gone before they could be stored."""

    def __call__(
        self, segments: list[Segment], lines: int, lost: Sequence[Segment] = ...
    ) -> None: ...


@dataclass
class Taken:
    """What one batch stores: this process's ready segments (with their record counts),
    lines kept in memory, and claims on dead writers' segments."""

    ready: list[Segment] = field(default_factory=list)
    memory: list[bytes] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)


def groups(segments: list[Segment], limit: int) -> list[list[Segment]]:
    """Consecutive runs of segments holding up to ``limit`` rows (at least one segment)."""
    runs: list[list[Segment]] = []
    rows = limit
    for segment in segments:
        if rows + segment[1] > limit:
            runs.append([])
            rows = 0
        runs[-1].append(segment)
        rows += segment[1]
    return runs


class _Session:
    """The database file attached, reattached every :data:`SESSION_ROWS` rows."""

    def __init__(self, engine: Engine, path: Path, timeout: float) -> None:
        self._engine, self._path, self._timeout = engine, path, timeout
        self.con: Any = engine.open(path, timeout)
        self.rows = 0

    def make_room(self) -> None:
        if self.rows >= SESSION_ROWS:
            self._engine.detach()
            self.con = self._engine.open(self._path, self._timeout)
            self.rows = 0


class Batches:
    """Writes batches to one database file (from one thread at a time).

    ``stored(segments, lines, lost)`` is called as each group of this process's segments and
    the memory lines are committed.
    """

    def __init__(
        self,
        path: Path,
        stored: Stored,
        notices: Notices,
    ) -> None:
        self.path = path
        self.engine = Engine()
        self._stored = stored
        self._notices = notices
        self._migrated = False
        self._unlinked: list[str] = []  # deleted segments whose ledger entries can go
        self.failing = False
        self._interrupted = 0  # batches interrupted in a row
        #: ``time.monotonic()`` before which the database is left alone.
        self.retry_at = 0.0
        #: The memory limit was raised: the batch should go again at once.
        self.retry_now = False

    def write(self, taken: Taken, timeout: float) -> bool:
        """Store ``taken``; True when all of it is in the database.

        ``timeout``: how long to wait for another process to release the file. On failure
        the memory lines not stored are left in ``taken.memory``.
        """
        import duckdb

        with contextlib.ExitStack() as held:
            try:
                held.enter_context(store_lock(self.path, shared=True, timeout=timeout))
                session = _Session(self.engine, self.path, timeout)
            except (StoreError, duckdb.Error) as exc:  # an interrupted SET or USE too
                self.engine.detach()
                self._failed(exc)
                return False
            return self._write(session, taken)

    def _write(self, session: _Session, taken: Taken) -> bool:
        import duckdb

        forget, self._unlinked = self._unlinked, []
        try:
            self._migrate(session)
            self._store_ready(session, taken.ready, forget)
            self._store_memory(session, taken.memory)
            self._recover(session, taken.claims)
            # Detaching checkpoints too, but swallows a failure: a file that cannot take
            # its checkpoint (damaged past what ``integrity`` sees) is said so here.
            session.con.execute(f"CHECKPOINT {ALIAS}")
        except (StoreError, duckdb.Error) as exc:
            self._unlinked[:0] = forget
            self._failed(exc)
            return False
        finally:
            self.engine.detach()
        self._usable_again()
        return True

    def _migrate(self, session: _Session) -> None:
        """Migrate the file at the first batch, and again when it was deleted or replaced
        since (one query per batch tells: a new file has no schema)."""
        version = schema_version(session.con) if self._migrated else None
        if version == SCHEMA_VERSION:
            return
        if version == 0:  # not a newer schema (migrate says that): a new, empty file
            logger.warning(
                "tokentrail: %s was deleted or replaced while in use; a new database is "
                "started there (the rows the old file held are not in it)",
                self.path,
            )
        migrate(session.con, self.path)
        self._migrated = True

    def _store_ready(self, session: _Session, ready: list[Segment], forget: list[str]) -> None:
        """This process's segments, a group per transaction. Ledger entries of segments
        deleted since (``forget``) go in the first transaction (one commit less)."""
        if forget and not ready:
            session.con.execute(
                "DELETE FROM tokentrail_ingested WHERE list_contains(?, segment)", [forget]
            )
            forget.clear()
        for group in groups(ready, GROUP_ROWS):
            session.make_room()
            present = [(path, count) for path, count in group if path.exists()]
            inserted, expected = insert_segments(session.con, present, forget=forget)
            forget.clear()
            session.rows += inserted
            _check(", ".join(path.name for path, _ in present), inserted, expected)
            for path, _ in group:
                self._segment_done(path)
            self._stored(group, 0, [s for s in group if s not in present])  # gone: lost

    def _store_memory(self, session: _Session, memory: list[bytes]) -> None:
        if memory:
            _check("memory", insert_lines(session.con, memory), len(memory))
            self._stored([], len(memory), [])
            memory.clear()

    def _recover(self, session: _Session, claims: list[Claim]) -> None:
        """Segments of processes that died, cut to their last complete record; one with
        lines that cannot be read is kept aside (``.damaged``) with a warning."""
        for path in (path for claim in claims for path in claim.segments):
            if not path.exists():
                continue  # another process stored it first
            torn = cut_torn_tail(path)
            damage = inspect(path)
            session.make_room()
            recovered = insert_segment(session.con, path)
            if recovered is None:  # stored before; the file was left by a crash
                self._segment_done(path)
                continue
            session.rows += recovered
            logger.info(
                "tokentrail: stored %d records spooled by a process that ended before storing them",
                recovered,
            )
            lost = damage.lost_records(recovered)
            if not lost:
                if torn:
                    logger.warning(
                        "tokentrail: %s ended with a record cut short (%d bytes); skipped",
                        path.name,
                        torn,
                    )
                self._segment_done(path)
                continue
            self._set_aside(path, recovered, lost)

    def _set_aside(self, path: Path, stored: int, lost: int) -> None:
        try:
            where = str(set_aside(path))
        except OSError as exc:
            where = f"{path} (could not be renamed: {exc})"
        else:
            self._unlinked.append(path.name)
        logger.warning(
            "tokentrail: %s was damaged: %d records could not be read and %d were "
            "stored; the file is kept as %s",
            path.name,
            lost,
            stored,
            where,
        )

    def _segment_done(self, path: Path) -> None:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            self._notices.once("unlink", f"cannot delete spool segment {path}: {exc}")
            return
        self._unlinked.append(path.name)

    def _failed(self, exc: Exception) -> None:
        """Sort a failure: busy or interrupted (retry at the next look), memory (retry now),
        or broken."""
        if isinstance(exc, StoreError):
            if is_lock_conflict(exc.__cause__ or exc):
                logger.debug("tokentrail: %s busy; will retry", self.path)
            else:
                self._broken(str(exc))
        elif is_interrupted(exc) and self._interrupted < MAX_INTERRUPTED:
            # Not a broken file: what was not committed waits in the spool for the next look.
            self._interrupted += 1
            logger.debug("tokentrail: a batch into %s was interrupted; will retry", self.path)
        elif is_out_of_memory(exc) and self.engine.raise_memory_limit():
            self.retry_now = True  # our own cap was too tight for this batch
        else:
            self._broken(f"cannot write to {self.path}: {str(exc).splitlines()[0]}")

    def _broken(self, message: str) -> None:
        self.failing = True
        self.retry_at = time.monotonic() + RETRY_AFTER
        self._notices.once(
            "db", f"{message}; records are kept in the spool and stored once it is usable"
        )

    def _usable_again(self) -> None:
        self._interrupted = 0
        if self.failing:
            self.failing = False
            self._notices.clear("db")
            logger.warning("tokentrail: %s is writable again; spooled records stored", self.path)


def _check(where: str, inserted: int | None, expected: int) -> None:
    if inserted is not None and inserted < expected:
        logger.warning(
            "tokentrail: %d of %d spooled records in %s could not be read and were skipped",
            expected - inserted,
            expected,
            where,
        )
