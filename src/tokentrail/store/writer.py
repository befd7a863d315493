"""``UsageStore``: the spool on the caller's thread, DuckDB on a background thread.

``submit(record)`` encodes the record and appends it to this process's spool segment
(a copy into the segment's memory map), then returns; nothing waits on DuckDB or on a
lock held by another process. A daemon thread wakes every ``interval`` seconds (or as
soon as a segment fills up), closes the open segment and copies the ready segments into
DuckDB in bulk, opening the file only for that batch so other processes and notebooks
can use it in between. A batch costs ~30 ms of CPU and rewrites ~800 KB of the file
whatever its size, so a few waiting records are left in the spool (durable already) for
up to ``max_delay`` seconds: an app making a call a second then pays one batch per
``max_delay`` seconds instead of one per second. ``flush()``, ``close()`` and this
process's own queries store everything at once.

Memory stays flat whatever the load: records live in the spool files, not in a queue,
and a segment is read back only when it is written to DuckDB. When the spool itself
cannot be written (no writable directory, disk full) records are kept in a bounded
in-memory buffer instead, with one warning.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
import threading
import time
import weakref
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import StoreError
from .connect import attach, is_lock_conflict, yield_to_readers
from .migrate import migrate
from .paths import fallback_spool_dir, primary_spool_dir, resolve_db_path
from .spool import (
    Claim,
    SpoolWriter,
    claim_orphans,
    cut_torn_tail,
    encode,
    frame,
    segment_rows_estimate,
)

if TYPE_CHECKING:
    from ..records import UsageRecord

__all__ = ["UsageStore"]

logger = logging.getLogger("tokentrail")

# How long to leave the database alone after it proved unusable (corrupt, newer schema,
# no permission) before trying again; records wait in the spool meanwhile.
_RETRY_AFTER = 30.0
# How often the writer looks for segments left by processes that died.
_ORPHAN_SCAN_EVERY = 30.0
# The database file's name inside the writer's in-memory DuckDB instance.
_ALIAS = "tokentrail_db"
# Rows stored per DuckDB connection before it is closed (checkpointed) and reopened.
_SESSION_ROWS = 20_000
# Rows of ready segments stored in one transaction. From one DuckDB row group (122,880
# rows) on, DuckDB writes them straight into the file (not to the WAL and again at the
# checkpoint): about half the CPU per row. A full segment wakes the writer early only once
# this many rows wait; otherwise it runs every ``interval`` seconds.
_GROUP_ROWS = 150_000
# The background writer stores a batch as soon as this many records wait; fewer wait at most
# ``max_delay`` seconds (see the module docstring).
_BATCH_ROWS = 1_000
# DuckDB's buffer pool for a writing session. Its default (80% of RAM) lets the checkpoint
# at close keep the table's pages cached, so a writer's RSS grew with the table (230 MB at
# 1M rows); 64 MB keeps it flat (~150 MB at 1M rows) for the same CPU. The JSON reader
# needs ~32 MB at once: on an out-of-memory error the limit doubles (up to the cap).
_MEMORY_LIMIT_MB = 64
_MEMORY_LIMIT_CAP_MB = 1024


class UsageStore:
    """Durable, batched, lock-friendly writes of usage records to a DuckDB file.

    Example::

        store = UsageStore("usage.duckdb")
        store.submit(record)      # microseconds; the record is already safe on disk
        store.flush()             # optional: wait until it is in DuckDB
        store.close()

    ``interval``: seconds between the background writer's looks at the spool; it stores a
    batch when 1,000 records wait, or when the first of them has waited ``max_delay``
    seconds (other processes see rows that much later; this process's queries flush
    first). ``segment_rows``: records per spool segment (and at most per insert).
    ``memory_cap``: records kept in memory when the spool cannot be written.
    ``lock_timeout``: how long one batch waits for another process to release the file
    before trying again later.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        interval: float = 1.0,
        max_delay: float = 5.0,
        segment_rows: int = 10_000,
        memory_cap: int = 100_000,
        lock_timeout: float = 10.0,
    ) -> None:
        self.path: Path = resolve_db_path(path)
        self.interval = interval
        self.max_delay = max_delay
        self.segment_rows = max(1, segment_rows)
        self.memory_cap = max(1, memory_cap)
        self.lock_timeout = lock_timeout
        self._init_state()
        _STORES.add(self)
        self._start_thread()

    def _init_state(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()  # spool writer, ready list, memory rows, counters
        self._io_lock = threading.Lock()  # one batch at a time
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._spool: SpoolWriter | None = None
        self._spool_failed = False
        self._ready: list[tuple[Path, int]] = []
        self._memory: deque[bytes] = deque()
        self._submitted = 0
        self._committed = 0
        self._lost = 0
        self._unlinked: list[str] = []
        self._migrated = False
        self._retry_at = 0.0
        self._next_orphan_scan = 0.0
        self._warned: set[str] = set()
        self._failing = False
        self._memory_limit_mb = _MEMORY_LIMIT_MB
        self._retry_now = False
        self._waiting_since: float | None = None  # when the writer first saw records wait
        self._duck: Any = None  # in-memory DuckDB instance, created by the writer on first use
        self._engine_limit_mb = 0  # the memory limit set on ``_duck`` (0: none yet)

    # ------------------------------------------------------------------ caller's thread
    def submit(self, record: UsageRecord) -> None:
        """Queue one record for the database; it is in the spool when this returns.

        Never raises and never blocks on the database.
        """
        try:
            data = frame(encode(record))
        except Exception:
            salvaged = _salvage(record)
            try:
                data = frame(encode(salvaged))
            except Exception:
                self._warn_once("encode", "a usage record could not be encoded; it was dropped")
                logger.debug("tokentrail: bad record %r", record, exc_info=True)
                return
            self._warn_once(
                "encode-salvage",
                "a usage record had values that could not be encoded; stored with its counts "
                "and 'encode_error' in metadata",
            )
        self._append(data)

    def submit_row(self, row: tuple[Any, ...]) -> bool:
        """Queue one row already in the spool format (:func:`~.spool.plain_row`).

        True when it is in the spool (or kept in memory, as :meth:`submit` does); False,
        with nothing queued, when it cannot be written as one line: then the caller
        submits the record instead. Never raises.
        """
        try:
            data = frame(row)
        except Exception:
            return False
        self._append(data)
        return True

    def _append(self, data: bytes) -> None:
        """Write one framed record to the spool (to memory when it cannot be written)."""
        with self._lock:
            self._submitted += 1
            spool = self._spool
            if spool is not None and spool.fast_append(data):
                # The usual case: written, the segment not full yet.
                if self._thread is None:
                    self._start_thread()
                return
            if self._thread is None:
                self._start_thread()
            if spool is None and not self._spool_failed:
                spool = self._open_spool()
            if spool is not None:
                try:
                    spool.append(data)
                except OSError as exc:
                    self._warn_once(
                        "spool-write", f"cannot write the spool ({exc}); keeping records in memory"
                    )
                    self._keep_in_memory(data)
                    return
                finally:
                    closed = spool.take_closed()
                    if closed:
                        self._ready.extend(closed)
                        if sum(rows for _, rows in self._ready) >= _GROUP_ROWS:
                            self._wake.set()
                return
            self._keep_in_memory(data)

    def _keep_in_memory(self, line: bytes) -> None:
        if len(self._memory) >= self.memory_cap:
            self._memory.popleft()
            self._lost += 1
            self._warn_once(
                "memory-full",
                f"more than {self.memory_cap} records could not be spooled or stored; "
                "the oldest are being dropped",
            )
        self._memory.append(line)

    def _open_spool(self) -> SpoolWriter | None:
        errors = []
        for directory in (primary_spool_dir(self.path), fallback_spool_dir(self.path)):
            try:
                self._spool = SpoolWriter(directory, self.segment_rows)
            except OSError as exc:
                errors.append(f"{directory}: {exc}")
                continue
            if directory != primary_spool_dir(self.path):
                self._warn_once(
                    "spool-fallback",
                    f"cannot write next to {self.path} ({errors[0]}); spooling to {directory}",
                )
            return self._spool
        self._spool_failed = True
        self._warn_once(
            "spool-open",
            "no writable spool directory (" + "; ".join(errors) + "); keeping records in memory",
        )
        return None

    # ------------------------------------------------------------------ lifecycle
    def flush(self, timeout: float | None = 30.0) -> bool:
        """Write every record submitted so far to DuckDB; True when all are there.

        Also drains segments left by processes that died. Returns False (never raises)
        when the database is unusable or still locked after ``timeout`` seconds; the
        records then stay in the spool for a later attempt.
        """
        if os.getpid() != self._pid:
            _after_fork_in_child_one(self)
        target = self._submitted
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        drained = self._drain(deadline, force=True)  # False: a dead writer's segment is left
        return drained and self._committed >= target and self._lost == 0 and not self._memory

    def close(self, timeout: float | None = 30.0) -> None:
        """Flush, stop the background thread and release the spool. Idempotent.

        Records still pending (database unusable or locked past ``timeout``) stay in the
        spool, where the next process that opens this database picks them up; a warning
        says how many.
        """
        if not self.flush(timeout) and self.pending() > 0:
            where = "memory (no writable spool)" if self._memory else "the spool"
            logger.warning(
                "tokentrail: %d records not yet in %s are kept in %s; the next tracker that "
                "opens this database stores them",
                self.pending(),
                self.path,
                where,
            )
        thread = self._thread
        self._stop = True
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)
        if self._io_lock.acquire(timeout=5.0):
            try:
                self._drop_engine()
            finally:
                self._io_lock.release()
        with self._lock:
            self._thread = None
            self._stop = False
            spool, self._spool = self._spool, None
            if spool is not None:
                rows = spool.rows
                last = spool.rotate()
                if last is not None:
                    self._ready.append((last, rows))
                spool.close()
        if self._memory:
            self._warn_once(
                "memory-lost",
                f"{len(self._memory)} records could not be stored and are lost at exit",
            )

    def pending(self) -> int:
        """Records of this process not yet in the database."""
        return self._submitted - self._committed - self._lost

    def __enter__(self) -> UsageStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"UsageStore({str(self.path)!r}, pending={self.pending()})"

    # ------------------------------------------------------------------ background thread
    def _start_thread(self) -> None:
        self._stop = False
        thread = threading.Thread(target=self._run, name="tokentrail-writer", daemon=True)
        self._thread = thread
        thread.start()

    def _run(self) -> None:
        wait = 0.0
        while not self._stop:
            if wait > 0.0:
                self._wake.wait(wait)
                self._wake.clear()
                if self._stop:
                    break
            started = time.monotonic()
            stored = False
            try:
                stored = self._drain(None, force=False)
            except Exception:  # the writer must survive anything; records stay spooled
                self._warn_once("writer", "the background writer failed; will retry")
                logger.debug("tokentrail: writer failure", exc_info=True)
            wait = self._next_wait(started, stored)

    def _next_wait(self, started: float, stored: bool) -> float:
        """Seconds until the writer's next look: looks start ``interval`` apart.

        Counted from the start of the last look, not its end: under sustained load a batch
        takes a good part of the interval, and waiting a whole interval after it would let
        the backlog grow (the writer stored every other second). After a failed look (the
        file busy or unusable) the writer waits a whole interval.
        """
        if not stored:
            return self.interval
        return max(0.0, started + self.interval - time.monotonic())

    # ------------------------------------------------------------------ one batch
    def _drain(self, deadline: float | None, *, force: bool) -> bool:
        wait = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
        if not self._io_lock.acquire(timeout=wait):
            return False
        try:
            done = self._drain_locked(deadline, force=force)
            while self._retry_now:  # the memory limit was raised: the batch goes again
                self._retry_now = False
                done = self._drain_locked(deadline, force=force)
            return done
        finally:
            self._io_lock.release()

    def _drain_locked(self, deadline: float | None, *, force: bool) -> bool:
        now = time.monotonic()
        with self._lock:
            spool = self._spool
            if not force and now < self._next_orphan_scan and not self._worth_a_batch(now):
                return True
            if spool is not None and spool.rows:
                rows = spool.rows
                last = spool.rotate()
                if last is not None:
                    self._ready.append((last, rows))
            ready = list(self._ready)
            memory = list(self._memory)
            self._memory.clear()
            since, self._waiting_since = self._waiting_since, None
        done = self._store_taken(ready, memory, deadline, now, force=force)
        if not done:  # kept for the next look: it tries again at once, not max_delay later
            with self._lock:
                if self._waiting_since is None:
                    self._waiting_since = now if since is None else since
        return done

    def _store_taken(
        self,
        ready: list[tuple[Path, int]],
        memory: list[bytes],
        deadline: float | None,
        now: float,
        *,
        force: bool,
    ) -> bool:
        """Store what was taken, and segments of dead processes when a scan is due."""
        scan_orphans = force or now >= self._next_orphan_scan
        if not ready and not memory and not scan_orphans:
            return True
        if not force and now < self._retry_at:
            self._restore_memory(memory)
            return False
        claims: list[Claim] = []
        if scan_orphans:
            self._next_orphan_scan = now + _ORPHAN_SCAN_EVERY
            own = {self._spool.token} if self._spool is not None else set()
            own |= {p.name.rsplit("-", 1)[0] for p, _ in ready}
            for directory in (primary_spool_dir(self.path), fallback_spool_dir(self.path)):
                claims.extend(claim_orphans(directory, own))
        if not ready and not memory and not any(c.segments for c in claims):
            for claim in claims:
                claim.release()
            return True
        try:
            return self._write(ready, memory, claims, deadline)
        finally:
            for claim in claims:
                claim.release()

    def _write(
        self,
        ready: list[tuple[Path, int]],
        memory: list[bytes],
        claims: list[Claim],
        deadline: float | None,
    ) -> bool:
        import duckdb

        from .ingest import insert_lines, insert_segment, insert_segments

        con: Any = None
        session_rows = 0

        def open_session() -> Any:
            budget = self.lock_timeout
            if deadline is not None:
                budget = min(budget, max(0.0, deadline - time.monotonic()))
            yield_to_readers(self.path)
            con = self._engine()
            if self._engine_limit_mb != self._memory_limit_mb:  # a SET costs ~1 ms
                con.execute(f"SET memory_limit = '{self._memory_limit_mb}MB'")
                self._engine_limit_mb = self._memory_limit_mb
            attach(con, self.path, _ALIAS, timeout=budget)
            con.execute(f"USE {_ALIAS}")
            return con

        def insert(path: Path) -> int | None:
            # DuckDB keeps what a connection inserted in memory until it checkpoints at
            # close: a backlog is stored in sessions of bounded size, so memory stays flat
            # (and readers get a turn between sessions).
            nonlocal con, session_rows
            if session_rows >= _SESSION_ROWS:
                self._end_session()
                con = open_session()
                session_rows = 0
            inserted = insert_segment(con, path)
            session_rows += inserted or 0
            return inserted

        try:
            con = open_session()
        except StoreError as exc:
            self._end_session()
            self._restore_memory(memory)
            if is_lock_conflict(exc.__cause__ or exc):
                logger.debug("tokentrail: %s busy; will retry", self.path)
            else:
                self._fail(str(exc))
            return False
        forget: list[str] = []
        try:
            if not self._migrated:
                migrate(con, self.path)
                self._migrated = True
            # Ledger entries of segments deleted since: dropped in the next insert's
            # transaction (one commit, one WAL sync less per batch), or on their own.
            forget, self._unlinked = self._unlinked, []
            if forget and not ready:
                con.execute(
                    "DELETE FROM tokentrail_ingested WHERE list_contains(?, segment)", [forget]
                )
                forget = []
            for group in _groups(ready, _GROUP_ROWS):
                if session_rows >= _SESSION_ROWS:
                    self._end_session()
                    con = open_session()
                    session_rows = 0
                present = [(path, count) for path, count in group if path.exists()]
                inserted, expected = insert_segments(con, present, forget=forget)
                forget = []
                session_rows += inserted
                self._check(", ".join(path.name for path, _ in present), inserted, expected)
                for path, count in group:
                    self._segment_done(path)
                    with self._lock:
                        self._ready.remove((path, count))
                        self._committed += count
            if memory:
                self._check("memory", insert_lines(con, memory), len(memory))
                with self._lock:
                    self._committed += len(memory)
                memory = []
            for claim in claims:
                for path in claim.segments:
                    if not path.exists():
                        continue  # another process stored it first
                    torn = cut_torn_tail(path)
                    if torn:
                        logger.warning(
                            "tokentrail: %s ended with a record cut short (%d bytes); skipped",
                            path.name,
                            torn,
                        )
                    expected = segment_rows_estimate(path)
                    recovered = insert(path)
                    if recovered is not None:
                        self._check(path.name, recovered, expected)
                        logger.info(
                            "tokentrail: stored %d records spooled by a process that ended "
                            "before storing them",
                            recovered,
                        )
                    self._segment_done(path)
        except StoreError as exc:
            self._restore_memory(memory)
            self._unlinked[:0] = forget
            if is_lock_conflict(exc.__cause__ or exc):
                logger.debug("tokentrail: %s busy; will retry", self.path)
            else:
                self._fail(str(exc))
            return False
        except duckdb.Error as exc:
            self._restore_memory(memory)
            self._unlinked[:0] = forget
            if _is_out_of_memory(exc) and self._memory_limit_mb < _MEMORY_LIMIT_CAP_MB:
                # Our own cap was too tight for this batch: raise it and retry at once.
                self._memory_limit_mb *= 2
                logger.debug(
                    "tokentrail: DuckDB memory limit raised to %d MB", self._memory_limit_mb
                )
                self._retry_now = True
                return False
            self._fail(f"cannot write to {self.path}: {str(exc).splitlines()[0]}")
            return False
        finally:
            self._end_session()
        if self._failing:
            self._failing = False
            self._warned.discard("db")
            logger.warning("tokentrail: %s is writable again; spooled records stored", self.path)
        return True

    def _engine(self) -> Any:
        """This store's in-memory DuckDB instance; the database file is attached per batch."""
        con = self._duck
        if con is None:
            import duckdb

            con = duckdb.connect(":memory:")
            # One DuckDB thread: batches are small, and the app keeps the other cores.
            con.execute("SET threads TO 1")
            self._duck = con
        return con

    def _end_session(self) -> None:
        """Detach the database file (checkpoint, release the lock); never raises."""
        con = self._duck
        if con is None:
            return
        try:
            con.execute("USE memory")
            con.execute(f"DETACH DATABASE IF EXISTS {_ALIAS}")
        except Exception:
            # Closing the whole instance releases the file whatever state it is in.
            logger.debug("tokentrail: detach failed; closing DuckDB", exc_info=True)
            self._drop_engine()

    def _drop_engine(self) -> None:
        con, self._duck = self._duck, None
        self._engine_limit_mb = 0
        if con is not None:
            with contextlib.suppress(Exception):
                con.close()

    def _check(self, where: str, inserted: int | None, expected: int) -> None:
        if inserted is not None and inserted < expected:
            logger.warning(
                "tokentrail: %d of %d spooled records in %s could not be read and were skipped",
                expected - inserted,
                expected,
                where,
            )

    def _segment_done(self, path: Path) -> None:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            self._warn_once("unlink", f"cannot delete spool segment {path}: {exc}")
            return
        self._unlinked.append(path.name)

    def _worth_a_batch(self, now: float) -> bool:
        """Whether the background writer stores what waits now (called under ``_lock``).

        Yes when ``_BATCH_ROWS`` records wait or the first seen has waited ``max_delay``
        seconds; a batch costs the same CPU and file writes for 1 row as for 1,000.
        """
        waiting = self.pending()  # spool, ready segments and memory: none is being written
        if not waiting:
            self._waiting_since = None
            return False
        if waiting >= _BATCH_ROWS:
            return True
        if self._waiting_since is None:
            self._waiting_since = now
        return now - self._waiting_since >= self.max_delay

    def _restore_memory(self, rows: list[bytes]) -> None:
        if rows:
            with self._lock:
                self._memory.extendleft(reversed(rows))

    def _fail(self, message: str) -> None:
        self._failing = True
        self._retry_at = time.monotonic() + _RETRY_AFTER
        self._warn_once(
            "db", f"{message}; records are kept in the spool and stored once it is usable"
        )

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning("tokentrail: %s", message)

    # ------------------------------------------------------------------ fork
    def _after_fork_in_child(self) -> None:
        if self._duck is not None:
            # The parent's DuckDB instance: never used nor destroyed in the child.
            _FORKED_ENGINES.append(self._duck)
        spool = self._spool
        if spool is not None:
            spool.forget_after_fork()
        warned = self._warned
        self._init_state()
        self._warned = warned


def _groups(segments: list[tuple[Path, int]], limit: int) -> list[list[tuple[Path, int]]]:
    """Consecutive runs of segments holding up to ``limit`` rows (at least one segment)."""
    groups: list[list[tuple[Path, int]]] = []
    rows = limit
    for segment in segments:
        if rows + segment[1] > limit:
            groups.append([])
            rows = 0
        groups[-1].append(segment)
        rows += segment[1]
    return groups


def _is_out_of_memory(exc: BaseException) -> bool:
    oom = getattr(sys.modules.get("duckdb"), "OutOfMemoryException", None)
    return (oom is not None and isinstance(exc, oom)) or "Out of Memory" in str(exc)


_STORES: weakref.WeakSet[UsageStore] = weakref.WeakSet()
_FORKED_ENGINES: list[Any] = []


def _after_fork_in_child_one(store: UsageStore) -> None:
    store._after_fork_in_child()


def _after_fork_in_child() -> None:
    # The child has none of the parent's threads and may have inherited locked locks:
    # every store starts over with a spool of its own; the parent keeps its segments.
    for store in list(_STORES):
        store._after_fork_in_child()


def _safe_text(value: Any) -> str | None:
    if value is None or type(value) is str:
        return value
    try:
        return str(value)
    except Exception:
        return f"<{type(value).__name__}>"


def _salvage(record: UsageRecord) -> UsageRecord:
    """A copy of ``record`` reduced to values that always encode (text, counts, status)."""
    from ..records import UsageRecord as Record
    from ..usage import COUNT_FIELDS, Usage

    counts = Usage.from_counts(
        {name: getattr(record.usage, name, 0) for name in COUNT_FIELDS},
        estimated=bool(getattr(record.usage, "estimated", False)),
        source="salvaged record",
    )
    return Record(
        model=_safe_text(record.model),
        provider=_safe_text(record.provider),
        usage=counts,
        framework=record.framework if record.framework in ("langchain", "llamaindex") else "manual",
        id=_safe_text(record.id) or "",
        user_id=_safe_text(record.user_id),
        session_id=_safe_text(record.session_id),
        operation=_safe_text(record.operation),
        metadata={"encode_error": True},
        status=record.status if record.status in ("ok", "error", "cancelled") else "ok",
    )


def _close_all_at_exit() -> None:
    for store in list(_STORES):
        try:
            store.close(timeout=10.0)
        except Exception:  # exiting anyway; the records are safe in the spool
            logger.debug("tokentrail: close at exit failed", exc_info=True)


atexit.register(_close_all_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
