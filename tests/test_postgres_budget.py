"""Budgets shared through PostgreSQL: processes on one database, some over TCP and some
over the unix socket (as if on other hosts), never overshoot together.

The chat model bills exactly the worst case the guard reserves
(:class:`tests.budget_workers.WorstCaseChat`), so any overshoot shows in the stored rows.
"""

from __future__ import annotations

import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests import budget_workers
from tests.budget_workers import lines_of, process_context, worst_case
from tokentrail import BudgetExceededError, Tracker
from tokentrail.budget.ledger_postgres import PostgresLedger
from tokentrail.store import reading


def _urls(server: Any, name: str) -> tuple[str, str]:
    server.create_database(name)
    return server.database_url(name), server.database_url(name, unix=True)


def _stored(url: str) -> tuple[int, int, Decimal]:
    with Tracker(url) as t:  # stores whatever the children left in their spools
        assert t.flush(60)
    with reading(url) as con:
        rows, ids, spent = con.execute(
            "SELECT count(*), count(DISTINCT id), coalesce(sum(total_cost), 0) FROM usage"
        ).fetchone()
    return int(rows), int(ids), Decimal(spent)


@pytest.mark.parametrize("delay", [0.0, 0.05])
def test_eight_processes_on_one_postgresql_database_never_overshoot(
    postgres_server: Any, tmp_path: Path, delay: float
) -> None:
    tcp, unix = _urls(postgres_server, f"budget8_{int(delay * 100)}")
    out = tmp_path / "out"
    out.mkdir()
    worst = worst_case("p0 thread 0 call 0", 40)
    limit = worst * 60 + worst / 3  # room for 60 worst-case calls out of 8 x 4 x 6 = 192
    ctx = process_context()
    start_at = time.time() + 3.0
    children = [
        ctx.Process(
            target=budget_workers.spend_in_threads,
            args=(tcp if n % 2 else unix, str(out), f"p{n}", 4, 6, str(limit), start_at),
            kwargs={"delay": delay},
        )
        for n in range(8)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(240)
        assert child.exitcode == 0, f"a child failed: exit code {child.exitcode}"
    outcomes = Counter(line.split(" ", 1)[0] for line in lines_of(out / "outcomes"))
    assert outcomes["error"] == 0, lines_of(out / "outcomes")
    assert outcomes["ok"] + outcomes["refused"] == 192
    assert outcomes["refused"] > 0, "the budget never bit: the test proves nothing"
    rows, ids, spent = _stored(tcp)
    assert spent <= limit, f"overshoot: {spent} > {limit}"
    assert len(lines_of(out / "sent")) == outcomes["ok"]  # refused calls never left
    assert rows == ids == outcomes["ok"]  # one row per returned call
    assert limit - spent < 2 * worst  # not refusing for nothing: the room was used
    fired = [float(line.split()[1]) for line in lines_of(out / "alerts")]
    assert len(fired) == 3  # 50%, 75%, 90%: once each across the 8 processes
    with Tracker(unix) as t:  # the shared ledger agrees with the stored rows
        t.budget(usd=limit, per="day", scope="global")
        assert isinstance(t._guard.ledger, PostgresLedger)  # type: ignore[union-attr]
        [status] = t.budget_status()
    assert (status.spent, status.reserved) == (spent, 0)


def test_an_unreachable_postgresql_ledger_follows_the_failure_policy(
    postgres_server: Any, pg_url: str
) -> None:
    """Server stopped: a ``closed`` budget refuses with the cause named, an ``open`` one
    lets the call through; records wait in the spool and are stored once it is back."""
    model = budget_workers.WorstCaseChat()
    closed = Tracker(pg_url)
    opened = Tracker(pg_url)
    try:
        closed.budget(usd=5, per="day", scope="global", on_error="closed")
        opened.budget(usd=5, per="day", scope="global", on_error="open")
        model.invoke("warm up", config={"callbacks": [closed.langchain()]})
        postgres_server.pg_ctl("stop")
        try:
            with pytest.raises(BudgetExceededError, match="ledger"):
                model.invoke("hello", config={"callbacks": [closed.langchain()]})
            model.invoke("hello", config={"callbacks": [opened.langchain()]})
        finally:
            postgres_server.pg_ctl("start")
        assert closed.flush(20) and opened.flush(20)
    finally:
        closed.close()
        opened.close()
    with reading(pg_url) as con:
        assert con.execute("SELECT count(*) FROM usage").fetchone() == (2,)
