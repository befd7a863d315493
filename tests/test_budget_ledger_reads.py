"""The shared ledger reads every bucket of a call in one statement: each figure in its place.

A reservation (and a settlement) reads all the call's buckets with one SQLite statement,
rows in the buckets' order. These tests give each bucket a different spend and limit, so
that a figure read into the wrong bucket shows up as a wrong status or the wrong budget
refusing, with more buckets than the prebuilt statements cover (nine and up).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tokentrail import BudgetExceededError, Tracker
from tokentrail.budget import PreflightRequest
from tokentrail.context import Attribution

MODEL = "gpt-4o-mini"


def _spend(t: Tracker) -> None:
    """Token spend that lands in different buckets: 100 for u1, 200 in session s1, 300 for
    operation op, 400 tagged a, 500 tagged b (every one also in the global buckets)."""
    t.record(model=MODEL, usage={"input_tokens": 100}, user_id="u1")
    t.record(model=MODEL, usage={"input_tokens": 200}, session_id="s1")
    t.record(model=MODEL, usage={"input_tokens": 300}, operation="op")
    t.record(model=MODEL, usage={"input_tokens": 400}, tags=["a"])
    t.record(model=MODEL, usage={"input_tokens": 500}, tags=["b"])


SCOPES = {
    # scope: (spend in its bucket before the call, limit): headroom 900 each but "tag:b"
    "user": (100, 1_000),
    "session": (200, 1_100),
    "operation": (300, 1_200),
    "tag:a": (400, 1_300),
    "tag:b": (500, 1_350),
    "global": (1_500, 2_400),
}

KEYS = {
    "user": "u1",
    "session": "s1",
    "operation": "op",
    "tag:a": "a",
    "tag:b": "b",
    "global": None,
}


@pytest.mark.parametrize("extra_windows", [0, 4])  # 6 buckets, then 10 (past the prebuilt 8)
def test_each_bucket_sees_its_own_spend_and_the_tightest_refuses(
    tmp_path: Path, extra_windows: int
) -> None:
    with Tracker(tmp_path / "usage.duckdb") as t:
        for scope, (_, limit) in SCOPES.items():
            t.budget(tokens=limit, per="day", scope=scope, persist=False, warn_at=None)
        for i in range(extra_windows):  # global buckets of other windows, never tight
            t.budget(tokens=10**9, per=("week", "month", "total", "7d")[i], scope="global")
        _spend(t)
        who = {"user_id": "u1", "session_id": "s1", "operation": "op", "tags": ["a", "b"]}
        # 850 tokens fit every bucket but tag:b (850 headroom, 1,350 - 500); 851 do not.
        fits = t.check(model=MODEL, prompt="hi", max_tokens=850 - _prompt(t), **who)  # type: ignore[arg-type]
        assert fits.allowed, fits.reason
        refused = t.check(model=MODEL, prompt="hi", max_tokens=851 - _prompt(t), **who)  # type: ignore[arg-type]
        assert not refused.allowed
        assert refused.budget is not None and refused.budget.scope == "tag:b"
        by_scope = {
            s.scope: s.spent for s in refused.statuses if s.window == "day" or s.scope != "global"
        }
        assert by_scope == {scope: spent for scope, (spent, _) in SCOPES.items()}
        assert {s.spent for s in refused.statuses if s.window != "day"} <= {1_500}

        ctx = t.call_context(Attribution.of(**who))  # type: ignore[arg-type]
        ask = PreflightRequest(
            MODEL, "openai", prompt="hi", max_tokens=850 - _prompt(t), context=ctx
        )
        held = t.preflight(ask)
        assert held is not None
        with pytest.raises(BudgetExceededError) as caught:
            t.preflight(ask)  # every bucket now holds 850 more: tag:b is full
        assert caught.value.scope == "tag:b"
        from tokentrail import Usage, UsageRecord

        t.capture(
            UsageRecord(MODEL, "openai", Usage(input_tokens=10, output_tokens=20)),
            context=ctx,
            reservation=held,
        )
        after = {
            (s.scope, s.window, s.key): (s.spent, s.reserved)
            for s in t.check(model=MODEL, prompt="hi", max_tokens=1, **who).statuses
        }  # type: ignore[arg-type]
        for scope, (spent, _) in SCOPES.items():
            assert after[(scope, "day", KEYS[scope])] == (spent + 30, 0), scope


def _prompt(t: Tracker) -> int:
    estimate = t.check(model=MODEL, prompt="hi", max_tokens=0).estimate
    assert estimate is not None
    return estimate.tokens


def test_a_failed_transaction_rolls_back_and_frees_the_ledger(tmp_path: Path) -> None:
    """An error inside a reservation's transaction (the guard's decision raising, a
    statement failing) leaves no hold behind, comes out as itself or as LedgerError, and
    the next reservation does not wait for a lock nobody released."""
    import sqlite3

    from tokentrail.budget.ledger import Ledger, LedgerError, Seen, Slot

    ledger = Ledger(tmp_path / "usage.duckdb.ledger.sqlite", timeout=0.2)
    slot = Slot('["tokens", "global", "day", "d", null]')

    def broken(_: list[Seen]) -> bool:
        raise ValueError("decision failed")

    with pytest.raises(ValueError, match="decision failed"):
        ledger.hold("r1", [slot], [10], broken, expires=2e9, now=1.0)

    def bad_sql(_: list[Seen]) -> bool:
        assert ledger._con is not None
        ledger._con.execute("INSERT INTO no_such_table VALUES (1)")
        return True

    with pytest.raises(LedgerError, match="no_such_table"):
        ledger.hold("r2", [slot], [10], bad_sql, expires=2e9, now=1.0)
    seen, held, _ = ledger.hold("r3", [slot], [10], lambda s: True, expires=2e9, now=1.0)
    assert held and seen == [Seen(0, 0, 0.0)]
    assert ledger.last_wait < 0.1  # no lock was left behind
    assert ledger.read([slot], 1.0) == [Seen(0, 10, 0.0)]  # only r3's hold
    other = sqlite3.connect(ledger.path, timeout=0.2)  # another connection can write
    other.execute("BEGIN IMMEDIATE")
    other.execute("ROLLBACK")
    other.close()
    ledger.close()
