"""The shared ledger in PostgreSQL: budgets held by every process on every host at once.

The same interface and tables as the SQLite ledger (``ledger``), in the store's own
database (``tokentrail_budget_buckets``, ``_spend``, ``_holds``; created by the store's
migrations). A reservation is one statement, the ``tokentrail_hold`` function (schema
migrations 9 and 10): it locks each applicable bucket's row (always in name order, so two
reservations over the same buckets queue instead of deadlocking), reads settled spend and
the bucket's ``held`` sum, and holds the amount in every bucket, committing at once. The
guard then decides on what was read; a call that does not fit gives its holds back and
the buckets' ``held`` is recounted from the live holds. Every budget takes a reservation
or none keeps it, and no process on any host reserves room another one holds. Settling
deletes the holds, lowers ``held`` and adds the real spend in one statement
(``tokentrail_settle``). (Holding first and deciding after keeps the decision, with its
refusal messages, in the guard, one rule for both ledgers, while a call that fits costs
one round trip, as one deciding on the server would.)

Waits are bounded: the process lock by ``timeout``, PostgreSQL's row locks and
statements by ``lock_timeout``/``statement_timeout`` set to the same. A server that is
down or slow comes out as :class:`~tokentrail.budget.ledger.LedgerError`, which the guard
handles by the budget's ``on_error`` policy. Holds carry the host and pid of the holder:
holds of a process that died on this host are dropped when they would refuse a call;
those of other hosts expire.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from ..store.paths import PostgresUrl
from .ledger import ALL_SLOTS, MAX_UNITS, Ledger, LedgerError, Seen, Slot, _alive

__all__ = ["PostgresLedger"]

_B, _S, _H = "tokentrail_budget_buckets", "tokentrail_budget_spend", "tokentrail_budget_holds"

# Every bucket's three figures in one statement, in the order of the names given.
_SEEN = f"""
SELECT
    (SELECT coalesce(sum(amount), 0) FROM {_S} s WHERE s.name = c.name AND s.slot >= c.cutoff),
    (SELECT coalesce(sum(amount), 0) FROM {_H} h WHERE h.name = c.name AND h.expires > %s),
    coalesce((SELECT warned FROM {_B} b WHERE b.name = c.name), 0)
FROM unnest(%s::TEXT[], %s::BIGINT[]) WITH ORDINALITY AS c(name, cutoff, i)
ORDER BY c.i
"""
# The three statements of every guarded call, prepared once per connection and run
# through libpq directly (see ``PostgresLedger._run``): the reservation (schema migrations 9
# and 10), the settlement (drop the holds, lower ``held``, create new bucket rows, add the
# spend, return each bucket's spend in its window), and giving a reservation's holds back.
_HOLD_ALL = (
    b"tokentrail_hold",
    "SELECT * FROM tokentrail_hold("
    "$1, $2::TEXT[], $3::BIGINT[], $4::BIGINT[], $5::FLOAT8[], $6::FLOAT8, $7::FLOAT8, "
    "$8::BOOLEAN, $9, $10::INTEGER)",
)
_SETTLE = (
    b"tokentrail_settle",
    "SELECT * FROM tokentrail_settle($1, $2::TEXT[], $3::BIGINT[], $4::BIGINT[], "
    "$5::BIGINT[], $6::TEXT[], $7::FLOAT8[], $8::BIGINT, $9::BIGINT)",
)
_RELEASE = (
    b"tokentrail_release",
    "SELECT * FROM tokentrail_release($1, $2::TEXT[], $3::BIGINT[], $4::FLOAT8, $5::BOOLEAN)",
)
_TOUCH = (
    f"INSERT INTO {_B} (name, expires) SELECT * FROM unnest(%s::TEXT[], %s::FLOAT8[]) "
    "ON CONFLICT (name) DO NOTHING"
)
_TRIM = f"DELETE FROM {_S} WHERE name = %s AND slot < %s"


def _array(values: Iterable[str | int | float | None]) -> str:
    """A PostgreSQL array literal, for a parameter cast to an array type. psycopg's own
    adaptation of a list (which first finds its element type) costs tens of µs per list,
    and a reservation and its settlement pass ten lists."""
    out = []
    for v in values:
        if v is None:
            out.append("NULL")
        elif isinstance(v, str):
            out.append('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"')
        else:
            out.append(repr(v))
    return "{" + ",".join(out) + "}"


class PostgresLedger(Ledger):
    """The ledger tables of one PostgreSQL store, shared by every process that uses it.

    A :class:`~tokentrail.budget.ledger.Ledger` by interface (the guard uses either); none
    of the SQLite file's machinery is used.
    """

    def __init__(self, url: PostgresUrl, *, timeout: float = 1.0) -> None:
        super().__init__(None, timeout=timeout)
        self.url = url
        self._pg: Any = None
        self._pg_pid = -1
        self._host = socket.gethostname()
        self._prepared: set[bytes] = set()  # statements prepared on the current connection
        self._encoding = "utf-8"  # the current connection's

    def _after_fork(self) -> None:
        """In a forked child: a fresh lock; the parent's socket is left alone."""
        super()._after_fork()
        self._pg = None

    # ------------------------------------------------------------------ connection
    def _connect(self) -> Any:
        con = self._pg
        if con is not None and self._pg_pid == os.getpid() and not con.closed and not con.broken:
            return con
        from ..store.postgres import connect_postgres
        from ..store.postgres_schema import migrate_postgres

        self._pg = None
        ms = max(1, int(self.timeout * 1000))
        con = connect_postgres(
            self.url,
            self.timeout,
            autocommit=True,
            options=f"-c lock_timeout={ms} -c statement_timeout={ms * 4}",
        )
        try:
            migrate_postgres(con, str(self.url))
            with con.transaction():
                horizon = time.time() - 86400
                con.execute(
                    f"DELETE FROM {_S} WHERE name IN "
                    f"(SELECT name FROM {_B} WHERE expires IS NOT NULL AND expires < %s)",
                    [horizon],
                )
                con.execute(
                    f"DELETE FROM {_B} WHERE expires IS NOT NULL AND expires < %s", [horizon]
                )
        except BaseException:
            con.close()
            raise
        self._pg, self._pg_pid = con, os.getpid()
        self._encoding = con.info.encoding
        self._prepared.clear()
        self._touched.clear()
        self._levels.clear()
        return con

    @contextlib.contextmanager
    def _pg_transaction(self, *, begin: bool = True) -> Iterator[Any]:
        """One transaction under the process lock (``begin=False``: the caller runs a single
        statement, a transaction of its own); every failure as :class:`LedgerError`."""
        import psycopg

        from ..errors import StoreError

        if not self._lock.acquire(timeout=self.timeout):
            raise LedgerError(f"the ledger stayed busy in this process for {self.timeout:g} s")
        started = time.perf_counter()
        try:
            con = self._connect()
            try:
                if begin:
                    with con.transaction():
                        yield con
                else:
                    yield con
            except BaseException:
                self._touched.clear()  # rows created in the rolled-back transaction are gone
                self._levels.clear()
                raise
        except (psycopg.Error, StoreError, OSError) as exc:
            if self._pg is not None and (self._pg.closed or self._pg.broken):
                self._pg = None
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise LedgerError(
                f"{text} (PostgreSQL ledger, {time.perf_counter() - started:.2f} s)"
            ) from exc
        finally:
            self._lock.release()

    def _run(
        self, con: Any, statement: tuple[bytes, str], params: Sequence[object]
    ) -> list[list[Any]]:
        """Run one of the call path's statements; its rows as text values (``bytes``).

        Through libpq (``con.pgconn``), prepared once per connection, parameters sent as
        text: psycopg's adaptation, cursor and row machinery were about a tenth of a guarded
        call's client CPU (bench_postgres reports CPU per call). Errors come out as psycopg's."""
        import psycopg
        from psycopg import pq

        pgconn, (name, sql) = con.pgconn, statement
        encoding = self._encoding
        if name not in self._prepared:
            result = pgconn.prepare(name, sql.encode())
            if result.status != pq.ExecStatus.COMMAND_OK:
                raise psycopg.errors.error_from_result(result, encoding=encoding)
            self._prepared.add(name)
        values = [
            None
            if v is None
            else (b"t" if v else b"f")
            if isinstance(v, bool)
            else str(v).encode(encoding)
            for v in params
        ]
        result = pgconn.exec_prepared(name, values)
        if result.status != pq.ExecStatus.TUPLES_OK:
            raise psycopg.errors.error_from_result(result, encoding=encoding)
        fields = range(result.nfields)
        return [[result.get_value(i, j) for j in fields] for i in range(result.ntuples)]

    # ------------------------------------------------------------------ reading
    @staticmethod
    def _seen_all(con: Any, slots: Sequence[Slot], now: float) -> list[Seen]:
        rows = con.execute(
            _SEEN, [now, _array(s.name for s in slots), _array(s.cutoff for s in slots)]
        ).fetchall()
        return [Seen(int(spent), int(held), float(warned)) for spent, held, warned in rows]

    def read(self, slots: Sequence[Slot], now: float) -> list[Seen]:
        """The buckets' current state (a snapshot; takes no lock)."""
        if not slots:
            return []
        with self._pg_transaction() as con:
            return self._seen_all(con, slots, now)

    def names(self, prefix: str) -> list[str]:
        """Bucket names starting with ``prefix``."""
        with self._pg_transaction() as con:
            rows = con.execute(
                f"SELECT name FROM {_B} WHERE starts_with(name, %s) ORDER BY name", [prefix]
            ).fetchall()
        return [str(r[0]) for r in rows]

    def synced(self, name: str) -> float:
        """When the bucket last took the store's spend in (0: never)."""
        with self._pg_transaction() as con:
            row = con.execute(f"SELECT synced FROM {_B} WHERE name = %s", [name]).fetchone()
        return float(row[0]) if row else 0.0

    # ------------------------------------------------------------------ writing
    def _touch_all(self, con: Any, slots: Sequence[Slot]) -> None:
        new = [s for s in slots if s.name not in self._touched]
        if not new:
            return
        con.execute(_TOUCH, [[s.name for s in new], [s.expires for s in new]])
        if len(self._touched) > 50_000:
            self._touched.clear()
        self._touched.update(s.name for s in new)

    def hold(
        self,
        reservation: str,
        slots: Sequence[Slot],
        amounts: Sequence[int],
        fits: Callable[[list[Seen]], bool],
        *,
        expires: float,
        now: float,
        _tries: int = 3,
    ) -> tuple[list[Seen], bool, int]:
        """Hold ``amounts`` in every bucket, read what was there before, and keep the holds
        only when ``fits(seen)``: one round trip for a call that fits.

        ``tokentrail_hold`` (schema migrations 9, 10) locks the buckets in name order,
        reads them and writes the holds in one statement that commits at once, so the
        buckets are locked for microseconds, not a round trip: that bounds calls/s on a
        shared budget. The holds are written before the decision (the guard's, in Python),
        so no process can ever reserve room another one took. A call that does not fit
        gives its holds back in a second round trip (``tokentrail_release``). When only
        holds stand in its way, that release also drops expired holds and those of dead
        processes of this host and recounts the buckets' ``held``, and a call that fits
        the recount is reserved again: a stale ``held`` never refuses a call on its own.
        ``fits`` is last called on the figures returned (the guard keeps its answer)."""
        import psycopg

        sweep = now - self._swept >= self.sweep_every
        if sweep:
            self._swept = now
        names = _array(s.name for s in slots)
        cutoffs = _array(s.cutoff for s in slots)
        args = [
            reservation,
            names,
            cutoffs,
            _array(min(int(a), MAX_UNITS) for a in amounts),
            None,  # the buckets' expiry, when some may not exist yet
            expires,
            now,
            sweep,
            self._host,
            os.getpid(),
        ]
        if any(s.name not in self._touched for s in slots):
            args[4] = _array(s.expires for s in slots)
        started = time.perf_counter()
        with self._pg_transaction(begin=False) as con:
            try:
                rows = self._run(con, _HOLD_ALL, args)
            except psycopg.errors.NoDataFound:  # a bucket was dropped: create it again
                self._touched.difference_update(s.name for s in slots)
                args[4] = _array(s.expires for s in slots)
                rows = self._run(con, _HOLD_ALL, args)
        self._touched.update(s.name for s in slots)
        self.last_wait = time.perf_counter() - started
        seen = [Seen(int(spent), int(held), float(warned)) for spent, held, warned, _ in rows]
        expired = int(rows[0][3]) if rows else 0
        try:
            ok = fits(seen)
            # Only holds in the way (the call would fit without them): worth a recount.
            recount = not ok and _tries > 1 and fits([s._replace(reserved=0) for s in seen])
        except BaseException:  # the holds are committed: give them back before failing
            with contextlib.suppress(LedgerError):
                self._release(reservation, names, cutoffs, now, recount=False)
            raise
        if ok:
            return seen, True, expired
        if recount:
            after = self._release(reservation, names, cutoffs, now, recount=True)
            if fits(after):
                seen, ok, more = self.hold(
                    reservation, slots, amounts, fits, expires=expires, now=now, _tries=_tries - 1
                )
                return seen, ok, expired + more
            return after, False, expired
        fits(seen)  # the decision stands on what the hold saw
        self._release(reservation, names, cutoffs, now, recount=False)
        return seen, False, expired

    def _release(
        self, reservation: str, names: str, cutoffs: str, now: float, *, recount: bool
    ) -> list[Seen]:
        """Delete the reservation's holds and lower ``held`` by them; with ``recount``,
        drop expired holds and those of processes of this host that no longer run, and
        recount ``held``. The buckets as then seen."""
        with self._pg_transaction(begin=recount) as con:
            if recount:
                self._drop_dead(con)
            rows = self._run(con, _RELEASE, [reservation, names, cutoffs, now, recount])
        return [Seen(int(spent), int(held), float(warned)) for spent, held, warned in rows]

    def _drop_dead(self, con: Any) -> int:
        """Delete holds of processes of this host that no longer run (``held`` is recounted
        by the release that follows in the same transaction)."""
        rows = con.execute(f"SELECT DISTINCT pid FROM {_H} WHERE host = %s", [self._host])
        dead = [int(p) for (p,) in rows.fetchall() if p != os.getpid() and not _alive(int(p))]
        if dead:
            con.execute(f"DELETE FROM {_H} WHERE host = %s AND pid = ANY(%s)", [self._host, dead])
        return len(dead)

    def settle(
        self,
        reservation: str | None,
        charges: Sequence[tuple[Slot, int]],
        alert: Callable[[int, int, float], float],
        now: float,
    ) -> list[tuple[int, float, float]]:
        """Drop the reservation's holds and add each bucket's real spend, in one statement
        (``tokentrail_settle``; see :meth:`Ledger.settle` for ``alert`` and the result)."""
        merged: dict[str, list[Any]] = {}  # name -> [slot, amount]: one row per bucket
        for slot, amount in charges:
            merged.setdefault(slot.name, [slot, 0])[1] += amount
        slots = [slot for slot, _ in merged.values()]
        new = [s for s in slots if s.name not in self._touched]
        with self._pg_transaction(begin=False) as con:
            for slot in slots:  # rolling windows: minutes out of the window go, once a minute
                if slot.cutoff != ALL_SLOTS and self._trimmed.get(slot.name) != slot.cutoff:
                    self._trimmed[slot.name] = slot.cutoff
                    con.execute(_TRIM, [slot.name, slot.cutoff])
            args = [
                reservation,
                _array(s.name for s in slots),
                _array(s.slot for s in slots),
                _array(a for _, a in merged.values()),
                _array(s.cutoff for s in slots),
                _array(s.name for s in new),
                _array(s.expires for s in new),
                MAX_UNITS,
                ALL_SLOTS,
            ]
            rows = self._run(con, _SETTLE, args)
            encoding = self._encoding
        self._touched.update(s.name for s in new)
        spent_of = {name.decode(encoding): int(total) for name, total in rows}
        out: list[tuple[int, float, float]] = []
        for index, (slot, _) in enumerate(charges):
            spent = spent_of[slot.name]
            warned = self._levels.get(slot.name, 0.0)  # a lower bound of the shared level
            level = alert(index, spent, warned)
            if level > warned:  # a threshold may be crossed: the shared level decides
                warned = self._raise_level(slot.name, level)
                level = alert(index, spent, warned)
            out.append((spent, warned, max(level, warned)))
        return out

    def _raise_level(self, name: str, level: float) -> float:
        """Raise the bucket's shared alert level to ``level``; the level it had before."""
        with self._pg_transaction() as con:
            row = con.execute(f"SELECT warned FROM {_B} WHERE name = %s FOR UPDATE", [name])
            found = row.fetchone()
            before = float(found[0]) if found else 0.0
            if level > before:
                con.execute(f"UPDATE {_B} SET warned = %s WHERE name = %s", [level, name])
        self._levels[name] = max(level, before)
        return before

    def release(self, reservation: str, slots: Sequence[Slot]) -> None:
        """Drop a reservation's holds in ``slots`` (the call never went out)."""
        names, cutoffs = _array(s.name for s in slots), _array(s.cutoff for s in slots)
        self._release(reservation, names, cutoffs, time.time(), recount=False)

    def merge_store(self, slot: Slot, store: dict[int, int], now: float) -> None:
        """Take in the store's spend for a bucket: each slot keeps the larger figure."""
        with self._pg_transaction() as con:
            self._touch_all(con, [slot])
            # The bucket's lock first, as every statement takes it before spend rows.
            con.execute(f"UPDATE {_B} SET synced = %s WHERE name = %s", [now, slot.name])
            for minute, amount in store.items():
                if amount:
                    con.execute(
                        f"INSERT INTO {_S} AS s (name, slot, amount) VALUES (%s, %s, %s) "
                        "ON CONFLICT (name, slot) DO UPDATE SET "
                        "amount = greatest(s.amount, excluded.amount)",
                        [slot.name, minute, min(amount, MAX_UNITS)],
                    )

    def close(self) -> None:
        """Close this process's connection (reopened on next use)."""
        with self._lock:
            con, self._pg = self._pg, None
            if con is not None and self._pg_pid == os.getpid():
                with contextlib.suppress(Exception):
                    con.close()
