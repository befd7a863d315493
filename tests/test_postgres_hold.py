"""The one-statement PostgreSQL reservation (``tokentrail_hold``, schema migrations 9, 10).

Against a real server (``pg_url`` in conftest), through :class:`PostgresLedger` as the
guard uses it: a reservation over several buckets holds in every one or keeps none, what
it reads excludes its own hold, and many reservations at once from separate connections,
naming the same buckets in opposite orders, never deadlock and never hold more than the
limit in any bucket. Each bucket's ``held`` (migration 10) is the sum of its holds after
every settle and release, is never below it, and a stale ``held`` never refuses a call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from tokentrail.budget.ledger import Seen, Slot
from tokentrail.budget.ledger_postgres import PostgresLedger
from tokentrail.store.paths import PostgresUrl


def _fits(limit: int, amounts: Sequence[int]) -> Callable[[list[Seen]], bool]:
    """The guard's rule for the test: every bucket has room for its amount."""
    return lambda seen: all(
        s.spent + s.reserved + a <= limit for s, a in zip(seen, amounts, strict=True)
    )


def _holds(url: str) -> dict[str, int]:
    with psycopg.connect(url) as con:
        rows = con.execute(
            "SELECT name, count(*) FROM tokentrail_budget_holds GROUP BY name"
        ).fetchall()
    return {str(name): int(n) for name, n in rows}


def _held(url: str) -> dict[str, tuple[int, int]]:
    """Per bucket: (``held``, the sum of its hold rows)."""
    with psycopg.connect(url) as con:
        rows = con.execute(
            "SELECT b.name, b.held, (SELECT coalesce(sum(h.amount), 0) "
            "FROM tokentrail_budget_holds h WHERE h.name = b.name) FROM tokentrail_budget_buckets b"
        ).fetchall()
    return {str(name): (int(held), int(total)) for name, held, total in rows}


def _hold(
    ledger: PostgresLedger, ident: str, slots: list[Slot], amounts: list[int], limit: int
) -> Any:
    now = time.time()
    return ledger.hold(ident, slots, amounts, _fits(limit, amounts), expires=now + 60, now=now)


def test_a_reservation_takes_every_bucket_or_none(pg_url: str) -> None:
    """Bucket b has room for 3 units, a for 10: a call of 4 is refused and leaves no hold
    in a either; a call of 3 holds in both, and each saw what was there before it."""
    ledger = PostgresLedger(PostgresUrl(pg_url))
    a, b = Slot("a"), Slot("b")
    try:
        seen, ok, _ = _hold(ledger, "r1", [a, b], [0, 7], 10)  # b: 7 of 10 held
        assert ok and [s.reserved for s in seen] == [0, 0]
        seen, ok, _ = _hold(ledger, "r2", [a, b], [4, 4], 10)
        assert not ok and [(s.spent, s.reserved) for s in seen] == [(0, 0), (0, 7)]
        assert _holds(pg_url) == {"a": 1, "b": 1}  # r1's only: r2 kept none
        seen, ok, _ = _hold(ledger, "r3", [a, b], [3, 3], 10)
        assert ok and [s.reserved for s in seen] == [0, 7]
        assert _holds(pg_url) == {"a": 2, "b": 2}
        ledger.settle("r3", [(a, 3), (b, 3)], lambda i, spent, warned: warned, time.time())
        [sa, sb] = ledger.read([a, b], time.time())
        assert (sa.spent, sa.reserved, sb.spent, sb.reserved) == (3, 0, 3, 7)
    finally:
        ledger.close()


def test_expired_holds_are_swept_and_counted(pg_url: str) -> None:
    ledger = PostgresLedger(PostgresUrl(pg_url))
    try:
        now = time.time()
        ok = ledger.hold("old", [Slot("x")], [5], _fits(5, [5]), expires=now - 1, now=now - 2)[1]
        assert ok
        ledger._swept = 0.0  # due for a sweep
        seen, ok, expired = _hold(ledger, "new", [Slot("x")], [5], 5)
        assert ok and expired == 1 and seen[0].reserved == 0
    finally:
        ledger.close()


def test_concurrent_reservations_in_opposite_orders_never_overshoot_or_deadlock(
    pg_url: str,
) -> None:
    """12 threads, each with its own connection, reserve 1 unit in buckets p and q (half
    name them p, q and half q, p) until refused: exactly ``limit`` reservations hold, in
    both buckets alike, and none failed (a deadlock or lock timeout would raise)."""
    limit, threads = 150, 12
    PostgresLedger(PostgresUrl(pg_url)).close()  # migrate once, before the crowd
    held: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def work(n: int) -> None:
        ledger = PostgresLedger(PostgresUrl(pg_url), timeout=10.0)
        slots = [Slot("p"), Slot("q")] if n % 2 else [Slot("q"), Slot("p")]
        mine = 0
        try:
            start.wait()
            for i in range(limit):
                if not _hold(ledger, f"t{n}-{i}", slots, [1, 1], limit)[1]:
                    break
                mine += 1
        except BaseException as exc:
            errors.append(exc)
        finally:
            held.append(mine)
            ledger.close()

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(120)
    assert not errors, errors
    assert sum(held) == limit
    assert _holds(pg_url) == {"p": limit, "q": limit}
    assert _held(pg_url) == {"p": (limit, limit), "q": (limit, limit)}


def test_cache_savings_read_the_cache_read_index_not_the_table(pg_url: str) -> None:
    """Schema migration 9's partial index has the savings query's predicate word for word,
    so PostgreSQL answers that query from the index (an index-only scan once vacuumed)."""
    from tokentrail.analytics.savings import CACHE_SAVED_ROWS, cache_savings_rows
    from tokentrail.store import reading
    from tokentrail.store.postgres_schema import PG_MIGRATIONS

    [index] = [s for v, _, stmts in PG_MIGRATIONS if v == 9 for s in stmts if "INDEX" in s]
    assert index.endswith(f"WHERE {CACHE_SAVED_ROWS}")
    with reading(pg_url) as con:
        con.execute("SET enable_seqscan = off")  # an empty table: only the index may answer
        plan = con.execute(
            f"EXPLAIN SELECT priced_model, provider, sum(cache_read_tokens), "
            f"sum(cache_read_cost) FROM usage WHERE {CACHE_SAVED_ROWS} GROUP BY 1, 2"
        ).fetchall()
        assert "usage_cache_reads" in " ".join(str(r[0]) for r in plan)
        assert cache_savings_rows(con, "", []) == []


def test_bucket_names_with_quotes_backslashes_and_commas_reach_the_server_intact(
    pg_url: str,
) -> None:
    """Bucket names are JSON (``["usd", "user", ...]``) and keys are anyone's text: the
    array literals the ledger sends must carry them byte for byte."""
    names = ['["usd","user","day","2026-12-05","a\\"b"]', "back\\slash", "co,mma {x} é", "NULL"]
    ledger = PostgresLedger(PostgresUrl(pg_url))
    try:
        slots = [Slot(n, expires=None if i % 2 else 1e12) for i, n in enumerate(names)]
        assert _hold(ledger, "r", slots, [1, 2, 3, 4], 10)[1]
        with psycopg.connect(pg_url) as con:
            rows = con.execute("SELECT name, amount FROM tokentrail_budget_holds").fetchall()
            buckets = con.execute("SELECT name, expires FROM tokentrail_budget_buckets").fetchall()
        assert sorted(rows) == sorted(zip(names, [1, 2, 3, 4], strict=True))
        assert sorted(buckets, key=str) == sorted(
            ((n, None if i % 2 else 1e12) for i, n in enumerate(names)), key=str
        )
        [seen] = ledger.read([slots[3]], time.time())
        assert seen.reserved == 4
    finally:
        ledger.close()


def test_a_decision_that_fails_gives_its_holds_back(pg_url: str) -> None:
    """The holds are committed before the guard decides: when deciding raises, they are
    deleted before the error goes on (else they would block room until they expire)."""
    ledger = PostgresLedger(PostgresUrl(pg_url))

    def broken(seen: list[Seen]) -> bool:
        raise RuntimeError("a bug in the decision")

    try:
        now = time.time()
        try:
            ledger.hold("r", [Slot("a"), Slot("b")], [1, 1], broken, expires=now + 60, now=now)
        except RuntimeError:
            pass
        else:
            raise AssertionError("the decision's error was swallowed")
        assert _holds(pg_url) == {}
    finally:
        ledger.close()


def test_held_is_the_sum_of_the_holds_after_settles_and_releases(pg_url: str) -> None:
    """Two ledgers hold, settle and release over buckets a and b: after each step every
    bucket's ``held`` equals its hold rows' sum (settling lowers it by the holds it drops,
    a refusal and a release give theirs back)."""
    one, two = PostgresLedger(PostgresUrl(pg_url)), PostgresLedger(PostgresUrl(pg_url))
    a, b = Slot("a"), Slot("b")
    try:
        assert _hold(one, "r1", [a, b], [3, 4], 10)[1]
        assert _hold(two, "r2", [b, a], [5, 1], 10)[1]
        assert _held(pg_url) == {"a": (4, 4), "b": (9, 9)}
        assert not _hold(one, "r3", [a, b], [1, 2], 10)[1]  # b: 9 + 2 > 10
        assert _held(pg_url) == {"a": (4, 4), "b": (9, 9)}
        two.settle("r2", [(b, 5), (a, 1)], lambda i, spent, warned: warned, time.time())
        assert _held(pg_url) == {"a": (3, 3), "b": (4, 4)}
        one.release("r1", [a, b])
        assert _held(pg_url) == {"a": (0, 0), "b": (0, 0)}
        [sa, sb] = one.read([a, b], time.time())
        assert (sa.spent, sa.reserved, sb.spent, sb.reserved) == (1, 0, 5, 0)
    finally:
        one.close()
        two.close()


def test_a_stale_held_never_refuses_a_call(pg_url: str) -> None:
    """``held`` still counts a hold that expired unswept, and one whose row an older
    client deleted without lowering it: a call that fits the live holds is recounted and
    reserved all the same, and ``held`` is exact again afterwards."""
    ledger = PostgresLedger(PostgresUrl(pg_url))
    x = Slot("x")
    try:
        now = time.time()
        ledger._swept = now  # no sweep is due: only the recount can drop the expired hold
        assert ledger.hold("old", [x], [5], _fits(10, [5]), expires=now - 1, now=now - 2)[1]
        assert _hold(ledger, "gone", [x], [5], 10)[1]
        with psycopg.connect(pg_url) as con:  # an older client's settle: the row only
            con.execute("DELETE FROM tokentrail_budget_holds WHERE reservation = 'gone'")
        assert _held(pg_url) == {"x": (10, 5)}  # the expired hold's row is still there
        seen, ok, _ = _hold(ledger, "new", [x], [10], 10)
        assert ok and seen[0].reserved == 0
        assert _held(pg_url) == {"x": (10, 10)} and _holds(pg_url) == {"x": 1}
    finally:
        ledger.close()


def test_a_bucket_dropped_under_a_process_is_created_again(pg_url: str) -> None:
    """A process skips creating buckets it has seen; when another one dropped such a
    bucket meanwhile (a window's rows go a day after it ends), the reservation creates it
    again instead of failing."""
    ledger = PostgresLedger(PostgresUrl(pg_url))
    x = Slot("x", expires=1e12)
    try:
        assert _hold(ledger, "r1", [x], [1], 10)[1]
        with psycopg.connect(pg_url) as con:
            con.execute("DELETE FROM tokentrail_budget_holds")
            con.execute("DELETE FROM tokentrail_budget_buckets")
        seen, ok, _ = _hold(ledger, "r2", [x], [2], 10)
        assert ok and seen[0].reserved == 0
        assert _held(pg_url) == {"x": (2, 2)}
    finally:
        ledger.close()


def test_holds_settles_and_releases_at_once_never_deadlock_and_keep_held_exact(
    pg_url: str,
) -> None:
    """8 threads, each with its own connection, hold 1 unit in buckets p and q (half name
    them p, q and half q, p), then settle or release it, until their calls run out: no
    call fails (a deadlock or lock timeout would raise), the spend is exactly the settled
    calls, and ``held`` is back to 0 with no hold left (settling and releasing lock the
    buckets too, in the same order as reserving)."""
    threads, calls, limit = 8, 40, 10**6
    PostgresLedger(PostgresUrl(pg_url)).close()  # migrate once, before the crowd
    settled: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def work(n: int) -> None:
        ledger = PostgresLedger(PostgresUrl(pg_url), timeout=10.0)
        slots = [Slot("p"), Slot("q")] if n % 2 else [Slot("q"), Slot("p")]
        mine = 0
        try:
            start.wait()
            for i in range(calls):
                ident = f"t{n}-{i}"
                assert _hold(ledger, ident, slots, [1, 1], limit)[1]
                if i % 3:
                    ledger.settle(ident, [(s, 1) for s in slots], lambda i, s, w: w, time.time())
                    mine += 1
                else:
                    ledger.release(ident, slots)
        except BaseException as exc:
            errors.append(exc)
        finally:
            settled.append(mine)
            ledger.close()

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(120)
    assert not errors, errors
    assert _held(pg_url) == {"p": (0, 0), "q": (0, 0)} and _holds(pg_url) == {}
    ledger = PostgresLedger(PostgresUrl(pg_url))
    try:
        [p, q] = ledger.read([Slot("p"), Slot("q")], time.time())
    finally:
        ledger.close()
    assert p.spent == q.spent == sum(settled) > 0
