"""PostgreSQL as the store: the shared budget ledger's latency and throughput, analytics.

* ``reserve + settle``: one guarded call's ledger work through the guard (a user and a
  global budget, a 1,000-token prompt seen before so the tokenizer is out of the way),
  against a PostgreSQL server on loopback: p50 and p99 (goal: p50 ≤ 2 ms). Baseline: the
  same on the default DuckDB store (its SQLite ledger).
* ``guarded calls/s``: 8 processes reserving and settling worst-case calls on one global
  budget until it refuses; calls/s across them (goal ≥ 1,000/s) and the overshoot (spend
  recorded in the ledger beyond the limit; goal: zero).
* ``summary`` and ``by_model`` on 1M rows in PostgreSQL beside DuckDB's on the same rows.

The server is ``TOKENTRAIL_BENCH_POSTGRES`` (a URL of a database the benchmark may fill)
or, where PostgreSQL is installed, a throwaway cluster like the tests'. Without either the
benchmark reports that it was skipped.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import queue
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

P50_GOAL_MS = 2.0
CALLS_GOAL = 1000.0
PROCS = 8


@contextmanager
def _server() -> Iterator[str | None]:
    """A URL of an empty database, or ``None`` when no PostgreSQL can be had."""
    given = os.environ.get("TOKENTRAIL_BENCH_POSTGRES")
    if given:
        yield given
        return
    root = Path(__file__).resolve().parent.parent
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        from tests import postgres_server

        server = postgres_server.start()
    except BaseException as exc:  # pytest's skip is a BaseException: no server here
        print(f"   no PostgreSQL server: {exc}", flush=True)
        yield None
        return
    os.environ["TOKENTRAIL_BENCH_CLUSTER"] = str(server.folder)
    try:
        yield server.create_database("bench")
    finally:
        os.environ.pop("TOKENTRAIL_BENCH_CLUSTER", None)
        server.stop()
        import shutil

        shutil.rmtree(server.folder, ignore_errors=True)


def _ms_row(name: str, samples: list[float], base_name: str, base: float) -> dict[str, Any]:
    value = statistics.median(samples) * 1000
    return {
        "name": name,
        "value": round(value, 3),
        "unit": "ms",
        "baseline_name": base_name,
        "baseline_value": round(base * 1000, 3),
        "ratio": round(value / (base * 1000), 2) if base else None,
        "goal": f"p50 ≤ {P50_GOAL_MS:g} ms",
        "met": value <= P50_GOAL_MS,
    }


def _reserve_settle(db: str | Path, n: int) -> list[float]:
    """Seconds per guarded call's tracking through the tracker's public surface, as the
    integrations run it: ``preflight`` (reserve) then ``capture`` (settle and store). The
    prompt is tokenized once and cached."""
    from tokentrail import Tracker, Usage, UsageRecord
    from tokentrail.budget import PreflightRequest
    from tokentrail.context import Attribution

    with Tracker(db) as tracker:
        tracker.budget(usd=10**6, per="day", scope="user", persist=False)
        tracker.budget(tokens=10**15, per="month", scope="global", persist=False)
        ctx = tracker.call_context(Attribution.of(user_id="u1"))
        prompt = [{"role": "user", "content": "hello " * 1000}]
        samples = []
        for i in range(n + 50):
            t0 = time.perf_counter()
            r = tracker.preflight(
                PreflightRequest("gpt-4o-mini", "openai", prompt, max_tokens=200, context=ctx)
            )
            record = UsageRecord(
                "gpt-4o-mini", "openai", Usage(input_tokens=1000, output_tokens=200)
            )
            tracker.capture(record, context=ctx, reservation=r)
            if i >= 50:  # warm-up: connection, migrations, encodings
                samples.append(time.perf_counter() - t0)
    return samples


def _spender(url: str, limit: str, start_at: float, seconds: float, out: Any) -> None:
    """One process: worst-case calls (billed exactly as reserved) until refused or done."""
    from tokentrail import BudgetExceededError, Tracker, Usage, UsageRecord
    from tokentrail.budget import PreflightRequest
    from tokentrail.context import Attribution

    ok = refused = 0
    with Tracker(url) as tracker:
        tracker.budget(usd=Decimal(limit), per="day", scope="global", persist=False)
        ctx = tracker.call_context(Attribution.of(user_id=f"p{os.getpid()}"))
        prompt = [{"role": "user", "content": "hi"}]
        request = PreflightRequest("gpt-4o-mini", "openai", prompt, max_tokens=20, context=ctx)
        tracker.release(tracker.preflight(request))  # warm-up: connection, encodings
        time.sleep(max(0.0, start_at - time.time()))
        cpu = time.process_time()
        began = time.perf_counter()
        while time.perf_counter() - began < seconds:
            try:
                r = tracker.preflight(request)
            except BudgetExceededError:
                refused += 1
                if refused > 50:
                    break
                continue
            assert r is not None
            usage = Usage(input_tokens=r.estimate.input_tokens, output_tokens=20)  # worst case
            tracker.capture(UsageRecord("gpt-4o-mini", "openai", usage), context=ctx, reservation=r)
            ok += 1
        elapsed = time.perf_counter() - began
        cpu = time.process_time() - cpu
    out.put((ok, refused, elapsed, cpu))


def _server_cpu() -> dict[int, float]:
    """CPU seconds so far of each process of the benchmark's own cluster (empty when the
    server is not one this benchmark started, or /proc cannot tell)."""
    folder = os.environ.get("TOKENTRAIL_BENCH_CLUSTER")
    if not folder:
        return {}
    try:
        root = int((Path(folder) / "data" / "postmaster.pid").read_text().split()[0])
        tick = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return {}
    out: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        pid, parent = int(stat.parent.name), int(fields[1])
        if root in (pid, parent):
            out[pid] = (int(fields[11]) + int(fields[12])) / tick
    return out


def _clear(url: str) -> None:
    """Empty the store and its ledger (the latency run's rows would count as spend)."""
    from tokentrail.store.paths import PostgresUrl
    from tokentrail.store.postgres import connect_postgres
    from tokentrail.store.postgres_schema import migrate_postgres

    pg = connect_postgres(PostgresUrl(url), autocommit=True)
    try:
        migrate_postgres(pg)
        pg.execute(
            "TRUNCATE usage, tokentrail_ingested, tokentrail_budget_buckets, "
            "tokentrail_budget_spend, tokentrail_budget_holds"
        )
    finally:
        pg.close()


def _throughput(url: str) -> tuple[float, int, Decimal, Decimal, float, float]:
    """(calls/s across the processes, calls, spend in the ledger, limit, client and server
    CPU seconds per call; the server's is 0 when it is not this benchmark's own cluster).
    CPU per call says what the box can do when other work shares its cores."""
    from tokentrail import cost

    _clear(url)
    one = cost("gpt-4o-mini", provider="openai", input_tokens=20, output_tokens=20)
    assert one is not None
    limit = one.total * 4000
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 8.0  # spawned interpreters import tokentrail first
    procs = [
        ctx.Process(target=_spender, args=(url, str(limit), start_at, 20.0, out))
        for _ in range(PROCS)
    ]
    for p in procs:
        p.start()
    time.sleep(max(0.0, start_at - time.time()))
    first = _server_cpu()  # backends end with their process: sampled until the results
    last = dict(first)
    results: list[Any] = []
    deadline = time.monotonic() + 180
    while len(results) < len(procs):
        with contextlib.suppress(queue.Empty):
            results.append(out.get(timeout=0.2))
        last.update(_server_cpu())
        if time.monotonic() > deadline:
            raise TimeoutError("the spender processes did not report")
    for p in procs:
        p.join(60)
    calls = sum(r[0] for r in results)
    elapsed = max(r[2] for r in results)
    client_cpu = sum(r[3] for r in results) / max(calls, 1)
    server_cpu = sum(v - first.get(k, 0.0) for k, v in last.items()) / max(calls, 1)
    from tokentrail import Tracker

    with Tracker(url) as t:
        t.budget(usd=limit, per="day", scope="global", persist=False)
        [status] = t.budget_status()
    return calls / elapsed, calls, Decimal(status.spent), limit, client_cpu, server_cpu


def _fill_postgres(duck: Path, url: str) -> float:
    """Copy the DuckDB file's rows into PostgreSQL (CSV through ``COPY``); seconds."""
    import duckdb

    from tokentrail.records import COLUMNS
    from tokentrail.store.paths import PostgresUrl
    from tokentrail.store.postgres import connect_postgres
    from tokentrail.store.postgres_schema import migrate_postgres

    t0 = time.perf_counter()
    csv = duck.with_suffix(".csv")
    con = duckdb.connect(str(duck), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        cols = ", ".join(
            "CASE WHEN tags IS NULL THEN NULL ELSE '{' || array_to_string(tags, ',') || '}' END"
            if c == "tags"
            else c
            for c in COLUMNS
        )
        con.execute(f"COPY (SELECT {cols} FROM usage) TO '{csv}' (FORMAT csv, HEADER false)")
    finally:
        con.close()
    pg = connect_postgres(PostgresUrl(url), autocommit=True)
    try:
        migrate_postgres(pg)
        pg.execute("TRUNCATE usage")
        with pg.cursor() as cur, cur.copy(f"COPY usage ({', '.join(COLUMNS)}) FROM STDIN (FORMAT csv)") as copy, csv.open("rb") as fh:  # fmt: skip
            while chunk := fh.read(1 << 20):
                copy.write(chunk)
        pg.execute("VACUUM ANALYZE usage")
    finally:
        pg.close()
        csv.unlink()
    return time.perf_counter() - t0


def _best(fn: Callable[[], Any], repeat: int = 3) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _analytics(url: str, tmp: Path, rows: int) -> list[dict[str, Any]]:
    from benchmarks.bench_analytics import build
    from tokentrail.analytics import queries
    from tokentrail.analytics.connection import connect

    duck = tmp / "usage.duckdb"
    build(duck, rows)
    _fill_postgres(duck, url)
    out = []
    queries_run: list[tuple[str, Callable[[Any], Any]]] = [
        ("summary", queries.summary),
        ("by_model", lambda con: queries.by(con, "model")),
    ]
    for name, query in queries_run:
        with connect(duck) as con:
            theirs = _best(functools.partial(query, con))
            expected = query(con).rows
        with connect(url) as con:
            ours = _best(functools.partial(query, con))
            got = query(con).rows
        assert len(expected) == len(got)
        out.append(
            {
                "name": f"{name} on {rows:,} rows, PostgreSQL",
                "value": round(ours * 1000, 1),
                "unit": "ms",
                "baseline_name": "DuckDB, same rows",
                "baseline_value": round(theirs * 1000, 1),
                "ratio": round(ours / theirs, 2) if theirs else None,
                "goal": "reported beside DuckDB",
                "met": None,
            }
        )
    return out


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def run(quick: bool = False, parts: str = "ledger,analytics") -> list[dict[str, Any]]:
    """The figures, or one row saying the benchmark was skipped (``parts``: which of
    ``ledger`` and ``analytics`` to run)."""
    n = 300 if quick else 2000
    rows = 100_000 if quick else 1_000_000
    with _server() as url:
        if url is None:
            return [{"name": "skipped: no PostgreSQL server", "goal": "", "met": None}]
        with tempfile.TemporaryDirectory(prefix="tokentrail-bench-pg-") as tmp:
            before = _load()
            results: list[dict[str, Any]] = []
            if "ledger" in parts:
                results += _ledger(url, Path(tmp), n)
            if "analytics" in parts:
                results += _analytics(url, Path(tmp), rows)
            load = f"machine load: before {before}; after {_load()}"
            results.append({"name": load, "goal": "context", "met": None})
    return results


def _ledger(url: str, tmp: Path, n: int) -> list[dict[str, Any]]:
    """Reserve + settle latency and guarded calls/s across processes."""
    pg = _reserve_settle(url, n)
    duck = _reserve_settle(tmp / "guard.duckdb", n)
    results = [
        _ms_row(
            "reserve + settle p50, PostgreSQL loopback",
            pg,
            "DuckDB default (SQLite ledger)",
            statistics.median(duck),
        ),
        {
            "name": "reserve + settle p99, PostgreSQL loopback",
            "value": round(statistics.quantiles(pg, n=100)[98] * 1000, 3),
            "unit": "ms",
            "baseline_name": "DuckDB default p99",
            "baseline_value": round(statistics.quantiles(duck, n=100)[98] * 1000, 3),
            "ratio": None,
            "goal": "reported",
            "met": None,
        },
    ]
    rate, calls, spent, limit, client_cpu, server_cpu = _throughput(url)
    results.append(
        {
            "name": f"guarded calls/s, {PROCS} processes, one PostgreSQL budget",
            "value": round(rate),
            "unit": "calls/s",
            "baseline_name": "",
            "baseline_value": None,
            "ratio": None,
            "goal": f"≥ {CALLS_GOAL:,.0f}/s",
            "met": rate >= CALLS_GOAL,
        }
    )
    results.append(
        {
            "name": f"CPU per guarded call, {PROCS} processes (client + server)",
            "value": round((client_cpu + server_cpu) * 1000, 3),
            "unit": "ms",
            "baseline_name": "client / server",
            "baseline_value": f"{client_cpu * 1000:.3f} / {server_cpu * 1000:.3f}"
            if server_cpu
            else f"{client_cpu * 1000:.3f} / not measured",
            "ratio": None,
            "goal": "context: calls/s on free cores ≈ cores / CPU per call",
            "met": None,
        }
    )
    over = max(Decimal(0), spent - limit)
    results.append(
        {
            "name": f"overshoot after {calls:,} calls (spent {spent} of {limit} USD)",
            "value": float(over),
            "unit": "USD",
            "baseline_name": "",
            "baseline_value": None,
            "ratio": None,
            "goal": "0",
            "met": over == 0,
        }
    )
    return results


if __name__ == "__main__":
    only = [a.split("=", 1)[1] for a in sys.argv if a.startswith("--only=")]
    for result in run(quick="--quick" in sys.argv, parts=only[0] if only else "ledger,analytics"):
        print(result)
