"""Analytics at scale: 1M and 10M rows in the ``usage`` table.

Rows are generated inside DuckDB (one ``INSERT ... SELECT`` over ``range(n)``), with the
real schema and primary key, a month of timestamps, 9 models, 200 users, 6 operations,
cache reads and a few unpriced rows. Measured, each against a baseline from the same run:

* ``summary()``, ``by_model()``, ``over_time("day", by="model")`` through ``Analytics`` (open
  the file, query, build the DataFrame) — baseline: ``SELECT count(*)`` through the same
  ``reading()`` connection (the cost of opening the file and touching the table);
* ``tokentrail report`` wall time (a new process) — baseline: ``python -c pass``;
* ``tokentrail --help`` start-up — baseline: ``python -c pass``.

Goals: each query and the report under 1 s, ``--help`` under 300 ms.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

_MODELS = (
    "['gpt-4o','gpt-4o-mini','o4-mini','claude-sonnet-4-5','claude-haiku-4-5',"
    "'gemini-2.5-flash','text-embedding-3-small','llama3.1:8b','acme-experimental-1']"
)
_PROVIDERS = (
    "['openai','openai','openai','anthropic','anthropic','google','openai','ollama','acme']"
)
_OPS = "['chat','rag-answer','embed','summarize','agent-step','classify']"
# USD per token (input, output) per model, same order as _MODELS; NULL price = unpriced.
_IN = "[2.5e-6, 1.5e-7, 1.1e-6, 3e-6, 1e-6, 3e-7, 2e-8, 0, NULL]"
_OUT = "[1e-5, 6e-7, 4.4e-6, 1.5e-5, 5e-6, 2.5e-6, 0, 0, NULL]"


def build(path: Path, rows: int) -> float:
    """Create ``path`` with ``rows`` generated rows; returns seconds taken."""
    import duckdb

    from tokentrail.store.migrate import migrate

    t0 = time.perf_counter()
    con = duckdb.connect(str(path))
    try:
        migrate(con)
        con.execute("SET enable_progress_bar = false")
        con.execute(
            f"""
            INSERT INTO usage (id, ts, latency_ms, framework, provider, model, priced_model,
                user_id, session_id, operation, tags, input_tokens, output_tokens,
                total_tokens, cache_read_tokens, reasoning_tokens, input_cost,
                cache_read_cost, output_cost, total_cost, currency, cost_source, status)
            WITH g AS (
                SELECT i,
                    1 + (hash(i) % 9)::INTEGER AS m,
                    100 + (hash(i * 7) % 9000)::BIGINT AS inp,
                    (hash(i * 13) % 900)::BIGINT AS outp,
                    CASE WHEN hash(i * 3) % 3 = 0 THEN (hash(i * 5) % 90)::BIGINT ELSE 0 END
                        AS cache_pct
                FROM range({rows}) t(i)
            ), p AS (
                SELECT *, inp * cache_pct // 100 AS cached,
                    ({_IN})[m] AS pin, ({_OUT})[m] AS pout FROM g
            )
            SELECT 'r' || i, TIMESTAMPTZ '2026-10-24 00:00:00+00'
                    + to_microseconds((i * (30 * 86400000000 // {rows}))::BIGINT),
                200 + (hash(i * 11) % 8000)::DOUBLE,
                (['langchain','llamaindex','manual'])[1 + i % 3],
                ({_PROVIDERS})[m], ({_MODELS})[m], ({_MODELS})[m],
                'user-' || (hash(i * 17) % 200)::VARCHAR,
                'session-' || (i // 20)::VARCHAR,
                ({_OPS})[1 + (hash(i * 19) % 6)::INTEGER],
                CASE WHEN i % 4 = 0 THEN ['prod', 'beta'] ELSE ['prod'] END,
                inp, outp, inp + outp, cached, CASE WHEN m = 3 THEN outp // 2 ELSE 0 END,
                ((inp - cached) * pin)::DECIMAL(18, 12),
                (cached * pin / 2)::DECIMAL(18, 12),
                (outp * pout)::DECIMAL(18, 12),
                ((inp - cached) * pin + cached * pin / 2 + outp * pout)::DECIMAL(18, 12),
                CASE WHEN pin IS NULL THEN NULL ELSE 'USD' END,
                CASE WHEN pin IS NULL THEN NULL ELSE 'catalog' END,
                CASE WHEN hash(i * 23) % 100 = 0 THEN 'error' ELSE 'ok' END
            FROM p
            """
        )
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return time.perf_counter() - t0


def _best(fn: Callable[[], Any], repeat: int = 3) -> float:
    """Median seconds of ``repeat`` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("tokentrail")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from tokentrail.cli import main; main()"]


def _process(args: list[str], env: dict[str, str]) -> Callable[[], None]:
    def run() -> None:
        subprocess.run(args, env=env, check=True, capture_output=True)

    return run


def _row(
    name: str, value: float, baseline_name: str, baseline: float, goal: float
) -> dict[str, Any]:
    return {
        "name": name,
        "value": round(value * 1000, 1),
        "unit": "ms",
        "baseline_name": baseline_name,
        "baseline_value": round(baseline * 1000, 1),
        "ratio": round(value / baseline, 2) if baseline else None,
        "goal": f"< {goal * 1000:.0f} ms",
        "met": value < goal,
    }


def measure(path: Path, rows: int) -> list[dict[str, Any]]:
    """Latencies of the analytics over an existing database of ``rows`` rows."""
    import logging

    from tokentrail.analytics import Analytics
    from tokentrail.store import reading

    logging.getLogger("tokentrail").setLevel(logging.ERROR)
    label = f"{rows // 1_000_000}M rows"
    analytics = Analytics(path)

    def count() -> None:
        with reading(path) as con:
            con.execute("SELECT count(*) FROM usage").fetchall()

    base = _best(count)
    out = [
        _row(f"summary() [{label}]", _best(analytics.summary), "SELECT count(*)", base, 1.0),
        _row(f"by_model() [{label}]", _best(analytics.by_model), "SELECT count(*)", base, 1.0),
        _row(
            f"over_time('day', by='model') [{label}]",
            _best(lambda: analytics.over_time("day", by="model")),
            "SELECT count(*)",
            base,
            1.0,
        ),
    ]
    env = {**os.environ, "TOKENTRAIL_DB": str(path)}
    python_pass = _best(_process([sys.executable, "-c", "pass"], env))
    report = _best(_process([*_cli(), "report"], env), repeat=2)
    out.append(_row(f"tokentrail report [{label}]", report, "python -c pass", python_pass, 1.0))
    return out


def run(quick: bool = False) -> list[dict[str, Any]]:
    """1M rows (and 10M unless ``quick``), plus CLI start-up."""
    results: list[dict[str, Any]] = []
    sizes = [1_000_000] if quick else [1_000_000, 10_000_000]
    with tempfile.TemporaryDirectory(prefix="tokentrail-bench-") as tmp:
        for rows in sizes:
            path = Path(tmp) / f"usage-{rows}.duckdb"
            build(path, rows)
            results.extend(measure(path, rows))
            path.unlink()
        env = {**os.environ, "TOKENTRAIL_DB": str(Path(tmp) / "none.duckdb")}
        python_pass = _best(_process([sys.executable, "-c", "pass"], env), repeat=5)
        helptime = _best(_process([*_cli(), "--help"], env), repeat=5)
        results.append(_row("tokentrail --help", helptime, "python -c pass", python_pass, 0.3))
    return results


if __name__ == "__main__":
    for result in run(quick="--quick" in sys.argv):
        print(result)
