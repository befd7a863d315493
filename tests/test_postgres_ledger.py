"""The PostgreSQL ledger through the guard: bounded waits, refusals, exact settlement.

A reservation is one statement (``tokentrail_hold``, schema migrations 9 and 10: lock,
read, hold, commit) and a refused call gives its holds back. These tests check, through a real
tracker against a real server (``pg_url`` in conftest), that it keeps what the separate
statements promised; ``test_postgres_hold`` tests the function itself.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests import budget_workers
from tokentrail import BudgetExceededError, Tracker


def test_a_locked_ledger_waits_a_bounded_time_then_follows_on_error(pg_url: str) -> None:
    """Another session holding the buckets: a ``closed`` budget refuses after about its
    ``ledger_timeout`` with the cause named, an ``open`` one lets the call through; once
    the lock is gone, calls are reserved again."""
    import psycopg

    model = budget_workers.WorstCaseChat()
    closed, opened = Tracker(pg_url), Tracker(pg_url)
    try:
        closed.budget(usd=5, per="day", scope="global", on_error="closed")
        opened.budget(usd=5, per="day", scope="global", on_error="open")
        for t in (closed, opened):
            model.invoke("warm up", config={"callbacks": [t.langchain()]})
        with psycopg.connect(pg_url) as other, other.transaction():
            other.execute("LOCK TABLE tokentrail_budget_buckets IN EXCLUSIVE MODE")
            began = time.perf_counter()
            with pytest.raises(BudgetExceededError, match="ledger"):
                model.invoke("hello", config={"callbacks": [closed.langchain()]})
            waited = time.perf_counter() - began
            model.invoke("hello", config={"callbacks": [opened.langchain()]})
        assert 0.5 < waited < 5.0, waited
        model.invoke("after", config={"callbacks": [closed.langchain()]})
        [status] = closed.budget_status()
        assert status.reserved == 0 and status.spent > 0
    finally:
        closed.close()
        opened.close()


def test_holds_refuse_at_the_limit_and_settle_exactly(pg_url: str) -> None:
    """One process, calls billed at their worst case: every call until the limit passes,
    the next is refused, and the ledger's spend equals the sum of what was settled."""
    model = budget_workers.WorstCaseChat()
    one = budget_workers.worst_case("hello there", 40)  # the model's max_tokens
    tracker = Tracker(pg_url)
    try:
        tracker.budget(usd=one * 7 + one / 2, per="day", scope="global")
        passed = 0
        with pytest.raises(BudgetExceededError, match="global"):
            for _ in range(1000):
                model.invoke("hello there", config={"callbacks": [tracker.langchain()]})
                passed += 1
        [status] = tracker.budget_status()
        assert passed == 7 and status.reserved == 0
        assert status.spent == one * 7 <= status.limit
        assert tracker.flush(20)
    finally:
        tracker.close()
    from tokentrail.store import reading

    with reading(pg_url) as con:
        stored: Any = con.execute("SELECT count(*), sum(total_cost) FROM usage").fetchone()
    assert stored[0] == passed and stored[1] == status.spent
