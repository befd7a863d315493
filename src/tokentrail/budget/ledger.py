"""The shared ledger: spend and reservations of every process on one database, in SQLite.

Every tracker on ``usage.duckdb`` keeps its budgets' state in ``usage.duckdb.ledger.sqlite``
beside it. A reservation is one ``BEGIN IMMEDIATE`` transaction that reads every
applicable bucket (settled spend + live holds) in one statement and, when the guard's
decision says the call fits, writes a hold in each: all budgets take it or none does, and no
other process can reserve in between. Settling deletes the holds, adds the real spend and
reads the buckets back (for alerts) in one transaction.

Why SQLite and not the DuckDB file: DuckDB lets one process write at a time and a notebook
holding the file blocks everyone, while a budgeted call must decide in microseconds. A
SQLite transaction in WAL mode takes a lock for tens of microseconds, readers never block,
the wait for the lock is bounded (``timeout``, then the budget's ``on_error`` policy), and
committed spend survives any crash of the process (``synchronous=NORMAL``: a power cut
may lose the last transactions, never corrupt the file). Python ships it (``sqlite3``).

Amounts are integers: tokens, or USD in pico-dollars (the store's 12 decimals), rounded
up. A bucket is one (unit, scope, window, window id, key); rolling windows keep spend per
minute (``slot``), others in slot 0. Holds carry an expiry (a call never closed cannot
block later calls forever) and the holder's pid (holds of a dead process are dropped).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

from .amounts import Amount
from .ledger_carry import carry, file_identity

logger = logging.getLogger("tokentrail")

__all__ = [
    "Ledger",
    "LedgerError",
    "Seen",
    "Slot",
    "from_units",
    "ledger_path",
    "to_units",
]

#: USD are kept in pico-dollars, the precision of the store's ``total_cost``.
USD_SCALE = Decimal(10**12)
#: Larger amounts are clamped (SQLite integers are 64-bit): about $4.6M or 4.6e18 tokens.
MAX_UNITS = 2**62
#: A slot below every minute: non-rolling buckets count every slot.
ALL_SLOTS = -(2**62)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (
    name TEXT PRIMARY KEY,
    warned REAL NOT NULL DEFAULT 0,
    synced REAL NOT NULL DEFAULT 0,
    expires REAL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS spend (
    name TEXT NOT NULL,
    slot INTEGER NOT NULL,
    amount INTEGER NOT NULL,
    PRIMARY KEY (name, slot)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS holds (
    name TEXT NOT NULL,
    reservation TEXT NOT NULL,
    amount INTEGER NOT NULL,
    expires REAL NOT NULL,
    pid INTEGER NOT NULL,
    PRIMARY KEY (name, reservation)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS carried (
    source TEXT NOT NULL,
    name TEXT NOT NULL,
    slot INTEGER NOT NULL,
    amount INTEGER NOT NULL,
    PRIMARY KEY (source, name, slot)
) WITHOUT ROWID;
"""
#: Seconds between checks that the ledger's path still names the file this process has
#: open (a deleted data folder would otherwise split the processes between two ledgers).
CHECK_FILE_EVERY = 1.0


def _seen_sql(count: int) -> str:
    """Every bucket's three figures in one row: ``?1`` is the time holds must outlive, then
    (name, cutoff) per bucket; columns come in the buckets' order, three per bucket."""
    parts = []
    for i in range(count):
        name, cutoff = f"?{2 * i + 2}", f"?{2 * i + 3}"
        parts.append(
            f"(SELECT coalesce(sum(amount), 0) FROM spend WHERE name = {name}"
            f" AND slot >= {cutoff}),"
            f" (SELECT coalesce(sum(amount), 0) FROM holds WHERE name = {name}"
            " AND expires > ?1),"
            f" coalesce((SELECT warned FROM buckets WHERE name = {name}), 0)"
        )
    return "SELECT " + ", ".join(parts)


#: The statement for 1..8 buckets, built once (a call rarely has more budgets than that).
_SEEN = [_seen_sql(n) for n in range(9)]


class LedgerError(Exception):
    """The ledger could not be read or written (locked past the timeout, I/O error)."""


def ledger_path(db_path: str | os.PathLike[str]) -> Path:
    """The ledger file of a database: ``<database>.ledger.sqlite``."""
    return Path(f"{os.fspath(db_path)}.ledger.sqlite")


def to_units(amount: Amount, unit: str, *, up: bool = True) -> int:
    """An amount as ledger units: tokens, or pico-USD rounded up (``up``) or down."""
    if unit != "usd":
        return amount if type(amount) is int and amount < MAX_UNITS else min(int(amount), MAX_UNITS)
    scaled = (amount if type(amount) is Decimal else Decimal(amount)) * USD_SCALE
    return min(math.ceil(scaled) if up else math.floor(scaled), MAX_UNITS)


def from_units(units: int, unit: str) -> Amount:
    """Ledger units back to an amount: int tokens or Decimal USD."""
    if unit != "usd":
        return int(units)
    if not units:
        return Decimal(0)
    amount = (Decimal(units) / USD_SCALE).normalize()
    # normalize() writes 100 as 1E+2: whole amounts keep their digits.
    return amount.quantize(Decimal(1)) if amount == amount.to_integral_value() else amount


class Slot(NamedTuple):
    """Where one bucket's spend is read and written.

    ``cutoff``: the first minute a rolling window counts (``ALL_SLOTS`` otherwise);
    ``slot``: the minute spend is written to (0 for non-rolling windows); ``expires``:
    when the bucket may be dropped (its window's end), ``None`` when never.
    """

    name: str
    cutoff: int = ALL_SLOTS
    slot: int = 0
    expires: float | None = None


class Seen(NamedTuple):
    """One bucket as a transaction saw it: settled spend, live holds, alert level."""

    spent: int
    reserved: int
    warned: float = 0.0


class Ledger:
    """One SQLite ledger file (or an in-memory one) shared by every process that opens it."""

    def __init__(self, path: str | os.PathLike[str] | None, *, timeout: float = 1.0) -> None:
        self.path = None if path is None else Path(path)
        self.timeout = timeout
        self._lock = threading.Lock()
        self._con: sqlite3.Connection | None = None
        self._pid = -1
        self._file: tuple[int, int] | None = None  # (st_dev, st_ino) of the open file
        self._next_file_check = 0.0
        #: Seconds the last transaction waited for the write lock (the bounded wait).
        self.last_wait = 0.0
        #: Seconds between sweeps of expired holds (they stop counting at expiry anyway).
        self.sweep_every = 1.0
        self._swept = 0.0
        self._touched: set[str] = set()  # bucket rows known to exist
        self._trimmed: dict[str, int] = {}  # rolling bucket -> cutoff minute last trimmed
        self._levels: dict[str, float] = {}  # bucket -> alert level this process last saw
        _LEDGERS.add(self)

    def _after_fork(self) -> None:
        """In a forked child: a fresh lock, and the parent's connection left alone.

        A lock held by another thread at the fork would never be released in the child.
        SQLite connections must not cross a fork: the inherited one is kept referenced (a
        close in the child could checkpoint or remove the parent's WAL) and never used.
        """
        self._lock = threading.Lock()
        if self._con is not None:
            _INHERITED.append(self._con)
        self._con = None
        self._touched.clear()
        self._levels.clear()

    # ------------------------------------------------------------------ connection
    def _connection(self) -> sqlite3.Connection:
        """The process's connection, opened on first use, again after a fork, and again
        when the file was deleted or replaced under it (see :meth:`_reopen_if_replaced`)."""
        # The pid as of the last fork (kept by the at-fork hook): os.getpid() is a system
        # call, and this runs in every transaction.
        if self._con is not None and self._pid == _PID:
            if self._file is None or time.monotonic() < self._next_file_check:
                return self._con
            return self._reopen_if_replaced(self._con)
        return self._open()

    def _open(self) -> sqlite3.Connection:
        target = ":memory:" if self.path is None else str(self.path)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(
            target, timeout=self.timeout, isolation_level=None, check_same_thread=False
        )
        try:
            # Small pages for a new file: a commit writes each changed page to the WAL
            # (about one per table a transaction touches), and 1 KiB frames commit faster
            # than 4 KiB ones (bench_guard). Files already made keep their size.
            con.execute("PRAGMA page_size=1024")
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            con.executescript(_SCHEMA)
            self._file = None if self.path is None else file_identity(self.path)
        except BaseException:
            con.close()
            raise
        self._next_file_check = time.monotonic() + CHECK_FILE_EVERY
        self._con, self._pid = con, _PID
        self._touched.clear()
        self._levels.clear()
        self._drop_dead_holders(con)
        self._drop_past_windows(con)
        return con

    def _reopen_if_replaced(self, old: sqlite3.Connection) -> sqlite3.Connection:
        """The open connection, or a new one when the path now names another file.

        A deleted data folder leaves this process writing to an unlinked file while a
        process started after it makes a new, empty ledger: each would see only its own
        spend. The open file keeps its inode while this connection holds it, so a new file
        at the path always has another one. The old file's spend, holds and alert levels
        are carried into the new one, once whichever process notices first (``carried``
        names each source file), and this process goes on there.
        """
        self._next_file_check = time.monotonic() + CHECK_FILE_EVERY
        assert self.path is not None and self._file is not None
        try:
            if file_identity(self.path) == self._file:
                return old
        except OSError:
            pass  # gone: a new file is made at the path
        source = f"{self._file[0]}:{self._file[1]}"
        con = self._open()
        try:
            carry(old, con, source, _PID, MAX_UNITS)
        finally:
            old.close()
        logger.warning(
            "tokentrail: the budget ledger %s was deleted or replaced while in use; its "
            "spend and reservations were carried into a new file there",
            self.path,
        )
        return con

    @staticmethod
    def _drop_past_windows(con: sqlite3.Connection) -> None:
        """Forget buckets of windows that ended over a day ago (the store keeps the rows)."""
        horizon = time.time() - 86400
        with contextlib.suppress(sqlite3.OperationalError):  # busy: another process does it
            con.execute("BEGIN IMMEDIATE")
            try:
                con.execute(
                    "DELETE FROM spend WHERE name IN "
                    "(SELECT name FROM buckets WHERE expires IS NOT NULL AND expires < ?)",
                    (horizon,),
                )
                con.execute(
                    "DELETE FROM buckets WHERE expires IS NOT NULL AND expires < ?", (horizon,)
                )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    @contextlib.contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        """This process's connection under its lock, waiting at most ``timeout`` for the lock.

        With the wait for SQLite's own lock after it, a call waits at most twice
        ``timeout`` however many threads queue. Errors come out as :class:`LedgerError`.
        """
        if not self._lock.acquire(timeout=self.timeout):
            raise LedgerError(f"the ledger stayed busy in this process for {self.timeout:g} s")
        try:
            yield self._connection()
        except (sqlite3.Error, OSError) as exc:
            raise LedgerError(str(exc)) from exc
        finally:
            self._lock.release()

    def _transaction(self) -> _Transaction:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` under the process lock; errors as LedgerError."""
        return _Transaction(self)

    def _drop_dead_holders(self, con: sqlite3.Connection) -> int:
        """Delete holds of processes that no longer run (a crash between reserve and settle)."""
        pids = [int(r[0]) for r in con.execute("SELECT DISTINCT pid FROM holds")]
        dead = [p for p in pids if p != os.getpid() and not _alive(p)]
        for pid in dead:
            con.execute("DELETE FROM holds WHERE pid = ?", (pid,))
        return len(dead)

    # ------------------------------------------------------------------ reading
    @staticmethod
    def _seen(con: sqlite3.Connection, slots: Sequence[Slot], now: float) -> list[Seen]:
        # One statement, one row for every bucket: each statement and each row costs a
        # round through the sqlite3 module (a VALUES table sorted back into the buckets'
        # order was slower), and this runs twice on every call.
        if not slots:
            return []
        sql = _SEEN[len(slots)] if len(slots) < len(_SEEN) else _seen_sql(len(slots))
        params: list[object] = [now]
        for s in slots:
            params += (s.name, s.cutoff)
        row = con.execute(sql, params).fetchone()
        make = Seen._make
        return [make(row[i : i + 3]) for i in range(0, len(row), 3)]

    def read(self, slots: Sequence[Slot], now: float) -> list[Seen]:
        """The buckets' current state (a snapshot; takes no write lock)."""
        with self._locked() as con:
            return self._seen(con, slots, now)

    def names(self, prefix: str) -> list[str]:
        """Bucket names starting with ``prefix`` (the keys seen in one window)."""
        with self._locked() as con:
            rows = con.execute(
                "SELECT name FROM buckets WHERE substr(name, 1, ?) = ? ORDER BY name",
                (len(prefix), prefix),
            ).fetchall()
        return [str(r[0]) for r in rows]

    def synced(self, name: str) -> float:
        """When the bucket last took the store's spend in (0: never)."""
        with self._locked() as con:
            row = con.execute("SELECT synced FROM buckets WHERE name = ?", (name,)).fetchone()
        return float(row[0]) if row else 0.0

    # ------------------------------------------------------------------ writing
    def hold(
        self,
        reservation: str,
        slots: Sequence[Slot],
        amounts: Sequence[int],
        fits: Callable[[list[Seen]], bool],
        *,
        expires: float,
        now: float,
    ) -> tuple[list[Seen], bool, int]:
        """Read every bucket and, when ``fits(seen)``, hold ``amounts`` in all of them.

        One transaction: no other process reserves or settles in between. Expired holds
        are dropped first. Returns (what was seen, whether held, how many expired holds
        were dropped). ``fits`` is the guard's decision; it must not do I/O.
        """
        with self._transaction() as con:
            expired = 0
            if now - self._swept >= self.sweep_every:
                self._swept = now
                expired = con.execute("DELETE FROM holds WHERE expires <= ?", (now,)).rowcount
            seen = self._seen(con, slots, now)
            ok = fits(seen)
            if not ok and self._drop_dead_holders(con):  # a crashed process held the room
                seen = self._seen(con, slots, now)
                ok = fits(seen)
            if not ok:
                return seen, False, expired
            self._touch(con, slots)
            pid = _PID
            con.executemany(
                "INSERT OR REPLACE INTO holds VALUES (?, ?, ?, ?, ?)",
                [
                    (s.name, reservation, a, expires, pid)
                    for s, a in zip(slots, amounts, strict=True)
                ],
            )
            return seen, True, expired

    def settle(
        self,
        reservation: str | None,
        charges: Sequence[tuple[Slot, int]],
        alert: Callable[[int, int, float], float],
        now: float,
    ) -> list[tuple[int, float, float]]:
        """Drop the reservation's holds and add each bucket's real spend, in one transaction.

        ``charges`` name every bucket the reservation holds (its holds elsewhere expire).

        ``alert(index, spent_after, warned)`` returns the bucket's new alert level (the
        highest threshold fraction reached); the level is stored so each threshold fires
        once per window across processes. Returns (spent after, old level, new level).
        """
        out: list[tuple[int, float, float]] = []
        with self._transaction() as con:
            if reservation is not None:  # by primary key: no index to keep up to date
                con.executemany(
                    "DELETE FROM holds WHERE name = ? AND reservation = ?",
                    [(slot.name, reservation) for slot, _ in charges],
                )
            slots = [slot for slot, _ in charges]
            self._touch(con, slots)
            # No RETURNING: in SQLite 3.40 it costs about four times the upsert itself;
            # one read of every bucket after the writes gives spend and alert levels.
            con.executemany(
                "INSERT INTO spend VALUES (?, ?, ?) ON CONFLICT (name, slot) "
                "DO UPDATE SET amount = min(amount + excluded.amount, ?)",
                [(slot.name, slot.slot, amount, MAX_UNITS) for slot, amount in charges],
            )
            self._trim(con, slots)
            after = self._seen(con, slots, now)
            for index, (slot, seen) in enumerate(zip(slots, after, strict=True)):
                level = alert(index, seen.spent, seen.warned)
                if level > seen.warned:  # a threshold crossed: stored, so it fires once
                    con.execute("UPDATE buckets SET warned = ? WHERE name = ?", (level, slot.name))
                out.append((seen.spent, seen.warned, max(level, seen.warned)))
        return out

    def _trim(self, con: sqlite3.Connection, slots: Sequence[Slot]) -> None:
        """Rolling buckets: drop minutes out of the window (once per minute is enough)."""
        for slot in slots:
            if slot.cutoff != ALL_SLOTS and self._trimmed.get(slot.name) != slot.cutoff:
                self._trimmed[slot.name] = slot.cutoff
                con.execute(
                    "DELETE FROM spend WHERE name = ? AND slot < ?", (slot.name, slot.cutoff)
                )

    def release(self, reservation: str, slots: Sequence[Slot]) -> None:
        """Drop a reservation's holds in ``slots`` (the call never went out)."""
        with self._transaction() as con:
            con.executemany(
                "DELETE FROM holds WHERE name = ? AND reservation = ?",
                [(slot.name, reservation) for slot in slots],
            )

    def merge_store(self, slot: Slot, store: dict[int, int], now: float) -> None:
        """Take in the store's spend for a bucket: each slot keeps the larger figure.

        The ledger's figure counts every call settled through a guard (some not yet in the
        store); the store's counts every stored row (some written by trackers without a
        budget, or before the ledger existed). Both are lower bounds of the truth, so the
        larger one is, too: nothing is counted twice.
        """
        with self._transaction() as con:
            self._touch(con, (slot,))
            for minute, amount in store.items():
                if amount:
                    con.execute(
                        "INSERT INTO spend VALUES (?, ?, ?) ON CONFLICT (name, slot) "
                        "DO UPDATE SET amount = max(amount, excluded.amount)",
                        (slot.name, minute, min(amount, MAX_UNITS)),
                    )
            con.execute("UPDATE buckets SET synced = ? WHERE name = ?", (now, slot.name))

    def _touch(self, con: sqlite3.Connection, slots: Sequence[Slot]) -> None:
        """Create each bucket's row once (it lists the key and holds the alert level)."""
        touched = self._touched
        for slot in slots:
            if slot.name in touched:
                continue
            con.execute(
                "INSERT OR IGNORE INTO buckets (name, expires) VALUES (?, ?)",
                (slot.name, slot.expires),
            )
            if len(touched) > 50_000:
                touched.clear()
            touched.add(slot.name)

    def close(self) -> None:
        """Close this process's connection (reopened on next use)."""
        with self._lock:
            if self._con is not None and self._pid == _PID:
                self._con.close()
            self._con = None


class _Transaction:
    """``with ledger._transaction() as con``: one write transaction under the process lock.

    Waits at most ``timeout`` for the process lock, then SQLite waits at most ``timeout``
    for the file's write lock (``last_wait`` says how long it did). An error rolls back;
    SQLite and I/O errors come out as :class:`LedgerError`. A class and not a
    ``@contextmanager`` generator: every guarded call makes two of these, and the
    generator machinery costs about ten times a plain ``__enter__``/``__exit__``.
    """

    __slots__ = ("_con", "_ledger")

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._con: sqlite3.Connection | None = None

    def __enter__(self) -> sqlite3.Connection:
        ledger = self._ledger
        # Uncontended, a plain acquire is twice as fast as one with a timeout.
        if not ledger._lock.acquire(False) and not ledger._lock.acquire(timeout=ledger.timeout):
            raise LedgerError(f"the ledger stayed busy in this process for {ledger.timeout:g} s")
        started = time.perf_counter()
        try:
            con = ledger._connection()
            con.execute("BEGIN IMMEDIATE")
        except (sqlite3.Error, OSError) as exc:
            ledger._lock.release()
            waited = time.perf_counter() - started
            raise LedgerError(f"{exc} (waited {waited:.2f} s)") from exc
        except BaseException:
            ledger._lock.release()
            raise
        ledger.last_wait = time.perf_counter() - started
        self._con = con
        return con

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        ledger, con = self._ledger, self._con
        assert con is not None
        try:
            if exc is None:
                try:
                    con.execute("COMMIT")
                    return
                except sqlite3.Error as failed:
                    exc = failed
            ledger._touched.clear()  # rows created in this transaction are gone
            with contextlib.suppress(sqlite3.Error):
                con.execute("ROLLBACK")
            if isinstance(exc, (sqlite3.Error, OSError)):
                raise LedgerError(str(exc)) from exc
        finally:
            ledger._lock.release()


_LEDGERS: weakref.WeakSet[Ledger] = weakref.WeakSet()
_INHERITED: list[sqlite3.Connection] = []


#: This process's id, refreshed in a forked child before any ledger is used there.
_PID = os.getpid()


def _after_fork_in_child() -> None:
    global _PID
    _PID = os.getpid()
    for ledger in list(_LEDGERS):
        ledger._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True
