"""Budgets that hold across processes: one shared ledger beside the DuckDB file.

Real processes (a forkserver's children) with threads share one global budget on one
DuckDB file and call a chat model that bills exactly the worst case the guard reserves
(:class:`tests.budget_workers.WorstCaseChat`), so any overshoot would show in the stored
rows. A "notebook" is another process holding a DuckDB connection on the file.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests import budget_workers
from tests.budget_workers import MODEL, WorstCaseChat, lines_of, process_context, worst_case
from tokentrail import BudgetExceededError, Tracker
from tokentrail.store import reading


def _run(
    db: Path, out: Path, procs: int, threads: int, calls: int, limit: Decimal, **kw: Any
) -> None:
    ctx = process_context()
    start_at = time.time() + 2.0
    children = [
        ctx.Process(
            target=budget_workers.spend_in_threads,
            args=(str(db), str(out), f"p{n}", threads, calls, str(limit), start_at),
            kwargs=kw,
        )
        for n in range(procs)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(180)
        assert child.exitcode == 0, f"a child failed: exit code {child.exitcode}"


def _stored(db: Path) -> tuple[int, int, Decimal]:
    with Tracker(db) as t:  # stores whatever the children left in the spool
        assert t.flush(60)
    with reading(db) as con:
        rows, ids, spent = con.execute(
            "SELECT count(*), count(DISTINCT id), coalesce(sum(total_cost), 0) FROM usage"
        ).fetchone()
    return int(rows), int(ids), Decimal(spent)


@pytest.mark.parametrize("delay", [0.0, 0.05])  # back to back; calls in flight 50 ms each
def test_eight_processes_with_threads_never_overshoot_a_shared_budget(
    tmp_path: Path, delay: float
) -> None:
    db, out = tmp_path / "usage.duckdb", tmp_path / "out"
    out.mkdir()
    worst = worst_case("p0 thread 0 call 0", 40)
    limit = worst * 60 + worst / 3  # room for 60 worst-case calls out of 8 x 4 x 6 = 192
    _run(db, out, procs=8, threads=4, calls=6, limit=limit, delay=delay)
    outcomes = Counter(line.split(" ", 1)[0] for line in lines_of(out / "outcomes"))
    assert outcomes["error"] == 0, lines_of(out / "outcomes")
    assert outcomes["ok"] + outcomes["refused"] == 192
    assert outcomes["refused"] > 0, "the budget never bit: the test proves nothing"
    rows, ids, spent = _stored(db)
    assert spent <= limit, f"overshoot: {spent} > {limit}"
    assert len(lines_of(out / "sent")) == outcomes["ok"]  # refused calls never left
    assert rows == ids == outcomes["ok"]  # one row per returned call
    assert limit - spent < 2 * worst  # not refusing for nothing: the room was used
    fired = [float(line.split()[1]) for line in lines_of(out / "alerts")]
    assert len(fired) == 3  # 50%, 75%, 90%: once each across the 8 processes
    with Tracker(db) as t:  # the shared ledger agrees with the stored rows, to the pico-dollar
        t.budget(usd=limit, per="day", scope="global")
        [status] = t.budget_status()
    assert (status.spent, status.reserved) == (spent, 0)


@pytest.mark.parametrize("read_only", [True, False])
def test_restarts_with_a_notebook_holding_the_file_keep_the_spend(
    tmp_path: Path, read_only: bool
) -> None:
    db, out = tmp_path / "usage.duckdb", tmp_path / "out"
    out.mkdir()
    with Tracker(db) as t:  # the file exists, as it does once a notebook opened it
        t.record(model=MODEL, usage={"input_tokens": 1})
    worst = worst_case("p0 thread 0 call 0", 40)
    limit = worst * 12 + worst / 2
    # A notebook holding the file: read-only, no other process can write it (spend stays
    # in the spools); read-write, no other process can even read it.
    notebook = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import sys, duckdb
            con = duckdb.connect({str(db)!r}, read_only={read_only})
            print("open", flush=True)
            sys.stdin.read()
        """),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert notebook.stdout is not None and notebook.stdout.readline().strip() == "open"
        for _ in range(3):  # three restarts in a row; spend stays in each one's spool
            _run(db, out, procs=1, threads=2, calls=8, limit=limit, store_close_timeout=0.5)
    finally:
        assert notebook.stdin is not None
        notebook.stdin.close()
        notebook.wait(30)
    outcomes = Counter(line.split(" ", 1)[0] for line in lines_of(out / "outcomes"))
    assert outcomes["error"] == 0, lines_of(out / "outcomes")
    assert outcomes["ok"] == 12 and outcomes["refused"] == 48 - 12
    latency = sorted(float(x) for x in lines_of(out / "latency"))
    # No call waited on the notebook's lock (before the ledger: 30 s at every reload).
    # The first call of a process may read the store once (bounded: store_timeout 0.5 s).
    assert latency[-1] < 5.0 and latency[len(latency) // 2] < 0.3, latency
    rows, ids, spent = _stored(db)
    assert rows - 1 == ids - 1 == outcomes["ok"] == len(lines_of(out / "sent"))
    assert spent - Decimal("0.00000015") <= limit


# ---------------------------------------------------------------------- in one process
def test_an_unpriced_response_model_settles_at_the_request_models_price(
    tracker: Tracker, tmp_path: Path
) -> None:
    sent = tmp_path / "sent"
    worst = worst_case("hello", 40)
    tracker.budget(usd=worst * 5 + worst / 2, per="day", scope="global")
    llm = WorstCaseChat(response_model="mystery-model-7", sent=str(sent))
    handler = tracker.langchain()
    done = 0
    with pytest.raises(BudgetExceededError):
        for _ in range(20):
            llm.invoke("hello", config={"callbacks": [handler]})
            done += 1
    assert done == 5 and len(lines_of(sent)) == 5
    [status] = tracker.budget_status()
    assert status.spent == worst * 5  # never $0: priced as gpt-4o-mini
    assert tracker.flush(30)
    with reading(tracker.path) as con:  # the rows say the same as the ledger, not NULL
        rows = con.execute("SELECT model, priced_model, total_cost FROM usage").fetchall()
    assert {(m, p) for m, p, _ in rows} == {("mystery-model-7", MODEL)}
    assert sum(c for _, _, c in rows) == worst * 5


def test_without_max_tokens_the_reservation_is_the_models_maximum_output(
    tracker: Tracker, tmp_path: Path
) -> None:
    from tokentrail.pricing import find_model

    entry = find_model(MODEL, "openai")
    assert entry is not None and entry.max_output_tokens == 16_384  # OpenAI's model page
    worst = worst_case("hello", 16_384)
    limit = worst * 3 + worst / 2
    tracker.budget(usd=limit, per="day", scope="global")
    llm = WorstCaseChat(max_tokens=None, sent=str(tmp_path / "sent"))
    handler = tracker.langchain()
    done = 0
    with pytest.raises(BudgetExceededError) as info:
        for _ in range(10):
            llm.invoke("hello", config={"callbacks": [handler]})
            done += 1
    assert done == 3 and info.value.estimate == worst
    assert tracker.flush(30)
    with reading(tracker.path) as con:
        (spent,) = con.execute("SELECT sum(total_cost) FROM usage").fetchone()
    assert Decimal(spent) == worst * 3 <= limit


def test_free_models_are_never_refused_by_usd_budgets(tracker: Tracker) -> None:
    from tokentrail.budget import PreflightRequest

    tracker.budget(usd="0.001", per="day", scope="global")
    tracker.record(model=MODEL, provider="openai", usage={"input_tokens": 10_000})  # over
    ask = PreflightRequest(model="llama3.2", provider="ollama", prompt="hi", max_tokens=100)
    assert tracker.preflight(ask) is not None
    with pytest.raises(BudgetExceededError):
        tracker.preflight(PreflightRequest(model=MODEL, provider="openai", prompt="hi"))


def _lock_ledger(db: Path) -> subprocess.Popen[str]:
    """Another process holding the ledger's write lock until its stdin closes."""
    ledger = f"{db}.ledger.sqlite"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import sqlite3, sys
            con = sqlite3.connect({ledger!r}, isolation_level=None)
            con.execute("BEGIN IMMEDIATE")
            print("locked", flush=True)
            sys.stdin.read()
        """),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


@pytest.mark.parametrize("on_error", ["closed", "open"])
def test_an_unreachable_ledger_follows_the_budgets_failure_policy(
    tracker: Tracker, tmp_path: Path, on_error: str, caplog: pytest.LogCaptureFixture
) -> None:
    sent = tmp_path / "sent"
    tracker.budget(usd=1, per="day", scope="global", on_error=on_error, ledger_timeout=0.3)
    llm = WorstCaseChat(sent=str(sent))
    handler = tracker.langchain()
    llm.invoke("warm", config={"callbacks": [handler]})  # the ledger file exists now
    holder = _lock_ledger(tracker.path)
    try:
        began = time.perf_counter()
        if on_error == "closed":
            with pytest.raises(BudgetExceededError, match="ledger could not be reached") as err:
                llm.invoke("hello", config={"callbacks": [handler]})
            assert len(lines_of(sent)) == 1  # the refused call never left
            # Spend is unknown: the message says so, not "exceeded ... spent $0.00".
            assert "could not be checked" in str(err.value) and "$0.00" not in str(err.value)
            assert err.value.cause is not None
        else:
            with caplog.at_level("WARNING", logger="tokentrail"):
                llm.invoke("hello", config={"callbacks": [handler]})
                llm.invoke("hello", config={"callbacks": [handler]})
            assert len(lines_of(sent)) == 3
            assert caplog.text.count("budget not enforced") == 1  # one warning
            assert "unchecked" not in caplog.text  # it was let through: no claim otherwise
        waited = time.perf_counter() - began
        assert 0.3 <= waited < 3.0  # a bounded wait, then the policy
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(10)


@pytest.mark.parametrize("on_error", ["closed", "open"])
def test_a_call_that_cannot_be_estimated_follows_the_failure_policy(
    tracker: Tracker, monkeypatch: pytest.MonkeyPatch, on_error: str
) -> None:
    from tokentrail.budget import PreflightRequest, guard

    def broken(*args: object, **kw: object) -> None:
        raise RuntimeError("tokenizer exploded")

    monkeypatch.setattr(guard, "estimate_call", broken)
    tracker.budget(tokens=1000, per="day", scope="global", on_error=on_error)
    ask = PreflightRequest(model=MODEL, provider="openai", prompt="hi", max_tokens=10)
    if on_error == "closed":
        with pytest.raises(BudgetExceededError, match="could not be estimated"):
            tracker.preflight(ask)
    else:
        assert tracker.preflight(ask) is None  # let through, unreserved


def test_alerts_after_a_restart_fire_once_each_and_in_order(tmp_path: Path) -> None:
    db = tmp_path / "usage.duckdb"
    seen: list[float] = []

    def budget(t: Tracker) -> None:
        t.budget(
            tokens=1000,
            per="day",
            scope="global",
            warn_at=(0.5, 0.75, 0.9),
            on_warn=lambda s: seen.append(s.percent),
        )

    with Tracker(db) as first:
        budget(first)
        first.record(model=MODEL, usage={"input_tokens": 600})
    assert seen == [60.0]
    with Tracker(db) as second:  # a new process: record() before anything was loaded
        budget(second)
        second.record(model=MODEL, usage={"input_tokens": 600})
        [status] = second.budget_status()
    assert status.spent == 1200 and status.percent == 120.0
    assert seen == [60.0, 120.0, 120.0]  # 75% and 90% fired once each, 50% not again


def test_an_abandoned_reservation_expires(tracker: Tracker) -> None:
    from tokentrail.budget import PreflightRequest

    tracker.budget(tokens=100, per="day", scope="global", reservation_ttl=0.3)
    ask = PreflightRequest(model=MODEL, provider="openai", prompt="hi", max_tokens=80)
    stream = tracker.preflight(ask)  # a stream never closed: never settled nor released
    assert stream is not None
    with pytest.raises(BudgetExceededError):
        tracker.preflight(ask)
    time.sleep(0.4)
    assert tracker.preflight(ask) is not None


def test_holds_of_a_killed_process_do_not_block_others(tmp_path: Path) -> None:
    from tokentrail.budget import PreflightRequest

    db = tmp_path / "usage.duckdb"
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import os, signal
            from tokentrail import Tracker
            from tokentrail.budget import PreflightRequest
            t = Tracker({str(db)!r})
            t.budget(tokens=100, per="day", scope="global")
            ask = PreflightRequest(model="gpt-4o-mini", provider="openai", prompt="hi",
                                   max_tokens=80)
            assert t.preflight(ask) is not None
            os.kill(os.getpid(), signal.SIGKILL)  # dies holding 80 + prompt tokens
        """),
        ],
        timeout=120,
    )
    assert child.returncode == -9
    with Tracker(db) as t:
        t.budget(tokens=100, per="day", scope="global")
        ask = PreflightRequest(model=MODEL, provider="openai", prompt="hi", max_tokens=80)
        assert t.preflight(ask) is not None  # the dead process's hold was dropped


def test_a_forked_child_uses_its_own_ledger_connection(tracker: Tracker) -> None:
    import os

    from tokentrail.budget import PreflightRequest

    tracker.budget(tokens=10_000, per="day", scope="global")
    ask = PreflightRequest(model=MODEL, provider="openai", prompt="hi", max_tokens=10)
    tracker.release(tracker.preflight(ask))  # the parent's connection is open
    pid = os.fork()
    if pid == 0:  # the child: reserve and settle through the same tracker object
        code = 1
        try:
            held = tracker.preflight(ask)
            tracker.record(model=MODEL, usage={"input_tokens": 100})
            code = 0 if held is not None else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    [s] = tracker.budget_status()
    assert s.spent == 100  # the child's spend, seen by the parent
    assert s.reserved == tracker.check(model=MODEL, prompt="hi", max_tokens=10).estimate.tokens  # type: ignore[union-attr]


def test_threads_queueing_on_a_locked_ledger_each_wait_a_bounded_time(tracker: Tracker) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from tokentrail.budget import PreflightRequest

    tracker.budget(tokens=10_000, per="day", scope="global", ledger_timeout=0.3)
    ask = PreflightRequest(model=MODEL, provider="openai", prompt="hi", max_tokens=10)
    tracker.release(tracker.preflight(ask))  # the ledger file exists now
    holder = _lock_ledger(tracker.path)

    def attempt(_: int) -> tuple[str, float]:
        began = time.perf_counter()
        try:
            tracker.preflight(ask)
        except BudgetExceededError as exc:
            return str(exc), time.perf_counter() - began
        return "passed", time.perf_counter() - began

    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(attempt, range(8)))
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(10)
    assert all("ledger could not be reached" in text for text, _ in results), results
    # Each waits for this process's lock, then SQLite's: at most twice ledger_timeout,
    # however many threads queue (not 8 x 0.3 s for the last one).
    assert max(waited for _, waited in results) < 2 * 0.3 + 0.5
    assert tracker.preflight(ask) is not None  # back to normal once the lock is gone


def test_spend_the_ledger_could_not_take_is_counted_and_taken_in_from_the_store(
    tracker: Tracker, caplog: pytest.LogCaptureFixture
) -> None:
    tracker.budget(tokens=10**6, per="day", scope="global", ledger_timeout=0.3, warn_at=None)
    tracker.record(model=MODEL, usage={"input_tokens": 1})  # the ledger file exists now
    holder = _lock_ledger(tracker.path)
    try:
        with caplog.at_level("WARNING", logger="tokentrail"):
            tracker.record(model=MODEL, usage={"input_tokens": 100})
            tracker.record(model=MODEL, usage={"input_tokens": 20})
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(10)
    assert caplog.text.count("could not record spend") == 1
    assert "this call's 100 tokens is missing" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="tokentrail"):
        tracker.record(model=MODEL, usage={"input_tokens": 3})
    assert "2 call(s) settled while it could not (120 tokens)" in caplog.text
    tracker.flush()
    [status] = tracker.budget_status()
    assert status.spent == 124  # the two unrecorded calls came back from the store
