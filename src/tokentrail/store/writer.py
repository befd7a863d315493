"""``UsageStore``: the spool on the caller's thread, DuckDB on a background thread.

``submit(record)`` encodes the record and appends it to this process's spool segment
(a copy into the segment's memory map), then returns; nothing waits on DuckDB or on a
lock held by another process. A daemon thread looks at the spool every ``interval``
seconds (see ``cadence``: a few waiting records wait up to ``max_delay``), closes the
open segment and copies the ready segments into DuckDB in bulk (see ``batch``), opening
the file only for that batch so other processes and notebooks can use it in between.
``flush()``, ``close()`` and this process's own queries store everything at once.

Memory stays flat whatever the load: records live in the spool files, not in a queue,
and a segment is read back only when it is written to DuckDB. When the spool cannot be
written (a read-only directory, a full disk) the next spool directory takes the records
(``paths.spool_dirs``); a segment deleted under the writer is read back from the
descriptor it still holds and written again. Only when no directory takes them are
records kept in a bounded in-memory buffer, and at exit the warning says how many were
lost. ``durability`` says when a record reaches the disk itself (see ``syncer``).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..records import encode_row
from .batch import Segment, Taken
from .cadence import Cadence
from .framing import frame
from .notices import Notices
from .paths import Database, PostgresUrl, resolve_db, spool_dirs
from .recovery import Claim, claim_orphans
from .salvage import salvaged
from .segments import DURABILITY, Durability, SpoolWriter, token_of
from .sink import batches_for
from .syncer import Syncer

if TYPE_CHECKING:
    from ..records import UsageRecord

__all__ = ["UsageStore"]

logger = logging.getLogger("tokentrail")

# How often the writer looks for segments left by processes that died.
_ORPHAN_SCAN_EVERY = 30.0
# A segment filling up wakes the writer early only once this many rows wait in ready
# segments (a whole group, see ``batch.GROUP_ROWS``); otherwise it looks every interval.
_WAKE_ROWS = 150_000


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
        path: str | os.PathLike[str] | PostgresUrl | None = None,
        *,
        interval: float = 1.0,
        max_delay: float = 5.0,
        segment_rows: int = 10_000,
        memory_cap: int = 100_000,
        lock_timeout: float = 10.0,
        durability: Durability = "interval",
    ) -> None:
        if durability not in DURABILITY:
            raise ValueError(
                f"durability must be one of {', '.join(DURABILITY)}, not {durability!r}"
            )
        self.durability: Durability = durability
        self.path: Database = resolve_db(path)  # a file, or a postgresql:// URL
        self.interval = interval
        self.max_delay = max_delay
        self.segment_rows = max(1, segment_rows)
        self.memory_cap = max(1, memory_cap)
        self.lock_timeout = lock_timeout
        self._notices = Notices()
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
        self._dir_index = 0  # the spool directory in use (see ``paths.spool_dirs``)
        self._retired: list[SpoolWriter] = []  # spools left after a failure, still locked
        self._syncer = Syncer(self._sync_work)
        self._sync_idle = True
        self._ready: list[Segment] = []
        self._memory: deque[bytes] = deque()
        self._submitted = 0
        self._committed = 0
        self._lost = 0
        self._next_orphan_scan = 0.0
        self._cadence = Cadence()
        self._batches = batches_for(self.path, self._stored, self._notices)

    # ------------------------------------------------------------------ caller's thread
    def submit(self, record: UsageRecord) -> None:
        """Queue one record for the database; it is in the spool when this returns.

        Never raises and never blocks on the database.
        """
        try:
            data: bytes | None = frame(encode_row(record))
        except Exception:
            data = self._salvage(record)
        if data is not None:
            self._append(data)

    def _salvage(self, record: UsageRecord) -> bytes | None:
        """The record reduced to values that always encode, framed; ``None`` if not even that."""
        try:
            data = frame(encode_row(salvaged(record)))
        except Exception:
            self._notices.once("encode", "a usage record could not be encoded; it was dropped")
            logger.debug("tokentrail: bad record %r", record, exc_info=True)
            return None
        self._notices.once(
            "encode-salvage",
            "a usage record had values that could not be encoded; stored with its counts "
            "and 'encode_error' in metadata",
        )
        return data

    def _append(self, data: bytes) -> None:
        """Write one framed record to the spool (to memory when it cannot be written)."""
        with self._lock:
            self._submitted += 1
            if self._thread is None:
                self._start_thread()
            self._write(data)

    def _write(self, data: bytes) -> None:
        """Write one framed record (called under ``_lock``) to the spool in use, else the
        next directory that takes it, else memory."""
        while True:
            spool = self._spool
            if spool is None and not self._spool_failed:
                spool = self._open_spool()
            if spool is None:
                self._keep_in_memory(data)
                return
            try:
                spool.append(data)
            except OSError as exc:  # a full disk, the folder gone and not makeable
                self._spool_broke(spool, exc)
                continue
            finally:
                if spool.closed:
                    self._ready.extend(spool.take_closed())
                    if sum(rows for _, rows in self._ready) >= _WAKE_ROWS:
                        self._wake.set()
            if self._sync_idle and spool.durability == "interval":
                self._sync_idle = False
                self._syncer.kick()
            return

    def _spool_broke(self, spool: SpoolWriter, exc: OSError) -> None:
        """The spool in use cannot be written: its segments stay ready (its lock is kept
        so no other process claims them) and the next directory is tried."""
        self._notices.once("spool-write", f"cannot write the spool in {spool.directory} ({exc})")
        self._rotate(spool)
        if any(token_of(path.name) == spool.token for path, _ in self._ready):
            self._retired.append(spool)
        else:
            spool.close()
        self._spool = None
        self._dir_index += 1

    def _keep_in_memory(self, line: bytes) -> None:
        if len(self._memory) >= self.memory_cap:
            self._memory.popleft()
            self._lost += 1
            self._notices.once(
                "memory-full",
                f"more than {self.memory_cap} records could not be spooled or stored; "
                "the oldest are being dropped",
            )
        self._memory.append(line)

    def _open_spool(self) -> SpoolWriter | None:
        errors = []
        directories = spool_dirs(self.path)
        for directory in directories[self._dir_index :]:
            try:
                self._spool = SpoolWriter(directory, self.segment_rows, self.durability)
            except OSError as exc:
                errors.append(f"{directory}: {exc}")
                self._dir_index += 1
                continue
            if directory != directories[0]:
                why = f" ({errors[0]})" if errors else ""
                self._notices.once(
                    "spool-fallback",
                    f"cannot write the spool next to {self.path}{why}; spooling to {directory}",
                )
            return self._spool
        self._spool_failed = True
        self._notices.once(
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
            self._after_fork_in_child()
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
        flushed = self.flush(timeout)
        self._stop_thread()
        if self._io_lock.acquire(timeout=5.0):
            try:
                self._batches.engine.drop()
            finally:
                self._io_lock.release()
        with self._lock:
            spool, self._spool = self._spool, None
            if spool is not None:
                self._rotate(spool)
                spool.close()
            for old in self._retired:
                old.close()
            self._retired.clear()
            lost = self._spill_memory()
        self._syncer.stop()  # outside the lock: its thread takes it for each tick
        if not flushed and self.pending() > 0:
            logger.warning(
                "tokentrail: %d records not yet in %s are kept in the spool; the next "
                "tracker that opens this database stores them",
                self.pending(),
                self.path,
            )
        if lost:
            logger.warning(
                "tokentrail: %d records could not be written anywhere (no spool directory "
                "took them, the database could not be written) and are lost",
                lost,
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

    def _stop_thread(self) -> None:
        thread = self._thread
        self._stop = True
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)
        with self._lock:
            self._thread = None
            self._stop = False

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
                self._notices.once("writer", "the background writer failed; will retry")
                logger.debug("tokentrail: writer failure", exc_info=True)
            wait = Cadence.next_wait(started, stored, time.monotonic(), self.interval)

    # ------------------------------------------------------------------ one look
    def _drain(self, deadline: float | None, *, force: bool) -> bool:
        """One look (``force``: store everything now); True when nothing failed."""
        wait = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
        if not self._io_lock.acquire(timeout=wait):
            return False
        try:
            done = self._look(deadline, force=force)
            while self._batches.retry_now:  # the memory limit was raised: again at once
                self._batches.retry_now = False
                done = self._look(deadline, force=force)
            return done
        finally:
            self._io_lock.release()

    def _look(self, deadline: float | None, *, force: bool) -> bool:
        now = time.monotonic()
        scan = force or now >= self._next_orphan_scan
        with self._lock:
            waiting = self.pending()
            if not scan and not self._cadence.worth_a_batch(waiting, now, self.max_delay):
                return True
            taken = self._take()
            since = self._cadence.taken()
        done = True
        try:
            if taken.ready or taken.memory or scan:
                done = self._store(taken, deadline, now, force=force, scan=scan)
        finally:
            if not done or taken.memory:
                self._keep_for_next_look(taken.memory, since, now)
        return done

    def _spill_memory(self) -> int:
        """At close (under ``_lock``): records kept in memory go to any spool directory
        that takes them now (the next tracker stores them); returns how many could not
        and are lost."""
        if not self._memory:
            return 0
        self._spool_failed = False
        self._dir_index = 0
        lines = list(self._memory)
        self._memory.clear()
        for line in lines:
            self._write(line)
        spool, self._spool = self._spool, None
        if spool is not None:
            self._rotate(spool)
            spool.close()
        lost = len(self._memory)
        self._memory.clear()
        self._lost += lost
        return lost

    def _sync_work(self) -> tuple[list[int], Path | None, bool]:
        """One tick of the group sync (``syncer``): what to sync, and whether a segment is
        open. A segment whose file was removed is written again now."""
        with self._lock:
            spool = self._spool
            fds: list[int] = []
            for old in self._retired:
                fds += old.sync_work()[0]
            if spool is None:
                self._sync_idle = True
                return fds, None, False
            with contextlib.suppress(OSError):  # tried again at the next tick
                spool.ensure_home()
            if spool.removed():
                self._rotate(spool)
            more, directory = spool.sync_work()
            open_ = spool.rows > 0
            if not open_:
                self._sync_idle = True
            return fds + more, directory, open_

    def _take(self) -> Taken:
        """What waits now (called under ``_lock``): the open segment is closed for it."""
        if self._spool_failed:  # no directory took records: try them again from the first
            self._spool_failed = False
            self._dir_index = 0
        self._rescue_ready()
        while self._spool is not None and self._spool.rows:
            # Records of a removed segment are written again into a new one: closed too.
            self._rotate(self._spool)
        memory = list(self._memory)
        self._memory.clear()
        return Taken(ready=list(self._ready), memory=memory)

    def _spools(self) -> list[SpoolWriter]:
        return [*self._retired, *([self._spool] if self._spool is not None else [])]

    def _rescue_ready(self) -> None:
        """Closed segments whose files were deleted (the spool folder removed): their
        records are read back from the descriptors the spool holds and written again."""
        for segment in [s for s in self._ready if not s[0].exists()]:
            data = next(
                (d for sp in self._spools() if (d := sp.read_back(segment[0])) is not None),
                None,
            )
            if data is None:
                continue  # not held: the batch counts it lost
            self._ready.remove(segment)
            self._notices.once(
                "spool-removed-closed",
                f"spool segments in {segment[0].parent} were deleted before they were "
                "stored (was the spool folder removed?); their records were written again",
            )
            for line in data.splitlines(keepends=True):
                if line.endswith(b"\n"):
                    self._write(line)

    def _rotate(self, spool: SpoolWriter) -> None:
        rows = spool.rows
        last = spool.rotate()
        if last is not None:
            self._ready.append((last, rows))
        if spool.orphaned:  # its file was removed: its records are written again
            lines, spool.orphaned = spool.orphaned, b""
            self._notices.once(
                "spool-removed",
                f"the spool segment in {spool.directory} was removed while in use "
                f"(a cleaner, a redeploy?); its {rows} records were written again",
            )
            for line in lines.splitlines(keepends=True):
                if line.endswith(b"\n"):
                    self._write(line)

    def _store(
        self, taken: Taken, deadline: float | None, now: float, *, force: bool, scan: bool
    ) -> bool:
        """Store what was taken, and segments of dead processes when a scan is due."""
        if not force and now < self._batches.retry_at:
            return False
        if scan:
            self._next_orphan_scan = now + _ORPHAN_SCAN_EVERY
            taken.claims = self._claim_orphans(taken.ready)
        try:
            if not (taken.ready or taken.memory or any(c.segments for c in taken.claims)):
                return True
            return self._batches.write(taken, self._lock_wait(deadline))
        finally:
            for claim in taken.claims:
                claim.release()

    def _lock_wait(self, deadline: float | None) -> float:
        """How long a batch waits for another process to release the file."""
        if deadline is None:
            return self.lock_timeout
        return min(self.lock_timeout, max(0.0, deadline - time.monotonic()))

    def _claim_orphans(self, ready: list[Segment]) -> list[Claim]:
        own = {self._spool.token} if self._spool is not None else set()
        own |= {p.name.rsplit("-", 1)[0] for p, _ in ready}
        claims: list[Claim] = []
        own |= {old.token for old in self._retired}
        for directory in spool_dirs(self.path):
            claims.extend(claim_orphans(directory, own))
        return claims

    def _keep_for_next_look(self, memory: list[bytes], since: float | None, now: float) -> None:
        """A look failed: its memory lines go back first in line, and the next look tries
        again at once rather than ``max_delay`` later."""
        with self._lock:
            self._memory.extendleft(reversed(memory))
            self._cadence.kept(since, now)

    def _stored(self, segments: list[Segment], lines: int, lost: Sequence[Segment] = ()) -> None:
        """A batch committed these segments of this process, or memory lines; ``lost``:
        segments among them whose files were gone (deleted before they were stored)."""
        with self._lock:
            if lost:
                gone = sum(rows for _, rows in lost)
                self._lost += gone
                self._committed -= gone
                logger.warning(
                    "tokentrail: %d records spooled in %s were lost: their segment files "
                    "were deleted before they were stored (was the spool folder removed?)",
                    gone,
                    lost[0][0].parent,
                )
            for segment in segments:
                self._ready.remove(segment)
                for spool in self._spools():
                    spool.release(segment[0])
            self._committed += sum(rows for _, rows in segments) + lines

    # ------------------------------------------------------------------ fork
    def _after_fork_in_child(self) -> None:
        """The child has none of the parent's threads and may have inherited locked
        locks: it starts over with a spool of its own; the parent keeps its segments."""
        self._batches.engine.forget_after_fork()
        for spool in self._spools():
            spool.forget_after_fork()
        self._init_state()


_STORES: weakref.WeakSet[UsageStore] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for store in list(_STORES):
        store._after_fork_in_child()


def _close_all_at_exit() -> None:
    for store in list(_STORES):
        try:
            store.close(timeout=10.0)
        except Exception:  # exiting anyway; the records are safe in the spool
            logger.debug("tokentrail: close at exit failed", exc_info=True)


atexit.register(_close_all_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
