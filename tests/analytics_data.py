"""Four known calls written into a DuckDB file the way the store writes them.

The analytics, CLI, display, plot and HTML report tests read these rows and compare their
figures with sums worked out by hand from the records below.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import duckdb

from tokentrail.pricing.types import Cost
from tokentrail.records import COLUMNS, UsageRecord
from tokentrail.store.schema import MIGRATIONS
from tokentrail.usage import Usage


def write_db(path: Path, records: Sequence[UsageRecord]) -> Path:
    """A DuckDB file with the usage schema and these records (as the store writes them)."""
    con = duckdb.connect(str(path))
    try:
        for _version, _name, statements in MIGRATIONS:
            for statement in statements:
                con.execute(statement)
        placeholders = ", ".join("?" for _ in COLUMNS)
        if records:
            con.executemany(
                f"INSERT INTO usage ({', '.join(COLUMNS)}) VALUES ({placeholders})",
                [[r.to_row()[c] for c in COLUMNS] for r in records],
            )
    finally:
        con.close()
    return path


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def cost(total: str, cache_read: str = "0", model: str | None = None) -> Cost:
    return Cost(total=Decimal(total), cache_read_cost=Decimal(cache_read), model=model)


R1 = UsageRecord(
    model="gpt-4o",
    provider="openai",
    usage=Usage(input_tokens=1000, output_tokens=200, cache_read_tokens=400),
    ts=utc(2026, 11, 20, 23, 30),
    latency_ms=1000,
    user_id="alice",
    session_id="s1",
    operation="chat",
    tags=("prod", "beta"),
    cost=cost("0.0045", "0.0005", "gpt-4o"),
)
R2 = UsageRecord(
    model="claude",
    provider="anthropic",
    usage=Usage(input_tokens=500, output_tokens=100, reasoning_tokens=50),
    ts=utc(2026, 11, 21, 0, 30),
    latency_ms=3000,
    user_id="bob",
    session_id="s2",
    operation="summarize",
    tags=("prod",),
    cost=cost("0.003", model="claude"),
)
R3 = UsageRecord(
    model="mystery",
    provider=None,
    usage=Usage(input_tokens=100, output_tokens=10),
    ts=utc(2026, 11, 22, 12, 0),
    latency_ms=2000,
    user_id="alice",
    session_id="s1",
    operation="chat",
    status="error",
    error_type="RateLimitError",
)
R4 = UsageRecord(
    model="gpt-4o",
    provider="openai",
    usage=Usage(input_tokens=2000, output_tokens=0, cache_read_tokens=1000, estimated=True),
    ts=utc(2026, 11, 22, 12, 1),
    latency_ms=500,
    user_id="carol",
    operation="chat",
    framework="langchain",
    cost=cost("0.004", "0.00125", "gpt-4o"),
)
