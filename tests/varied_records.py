"""Varied usage records for tests that compare stores (DuckDB and PostgreSQL) on the same rows."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from tokentrail.pricing.types import Cost
from tokentrail.records import UsageRecord
from tokentrail.store import UsageStore
from tokentrail.usage import Usage

__all__ = ["NOW", "fill", "varied_records"]

#: The newest a varied record can be; the oldest is 40 days before.
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


def varied_records(n: int = 400, seed: int = 7) -> list[UsageRecord]:
    """Varied calls over ~40 days: models, users, tags (none, one, several), unpriced
    calls, errors, cache reads, reasoning, latencies, estimated counts."""
    rnd = random.Random(seed)
    models = [("gpt-4o", "openai"), ("claude-x", "anthropic"), ("mystery", None), ("g", "google")]
    tags: list[tuple[str, ...]] = [(), ("prod",), ("prod", "beta"), ("it's",), ("beta",)]
    out = []
    for i in range(n):
        model, provider = rnd.choice(models)
        inp = rnd.randint(0, 5000)
        cached = rnd.randint(0, inp)
        outp = rnd.randint(0, 800)
        priced = model != "mystery"
        cost = (
            Cost(
                total=Decimal(rnd.randint(1, 10**9)) / Decimal(10**12),
                cache_read_cost=Decimal(rnd.randint(0, 10**6)) / Decimal(10**12),
                input_cost=Decimal(rnd.randint(0, 10**6)) / Decimal(10**12),
                model=model,
            )
            if priced
            else None
        )
        out.append(
            UsageRecord(
                model=model,
                provider=provider,
                usage=Usage(
                    input_tokens=inp,
                    output_tokens=outp,
                    cache_read_tokens=cached,
                    reasoning_tokens=rnd.randint(0, outp),
                    estimated=rnd.random() < 0.1,
                ),
                ts=NOW - timedelta(seconds=rnd.randint(0, 40 * 86400), microseconds=i),
                latency_ms=None if rnd.random() < 0.05 else rnd.uniform(50, 9000),
                user_id=rnd.choice(["alice", "bob", "carol", None]),
                session_id=rnd.choice(["s1", "s2", None]),
                operation=rnd.choice(["chat", "summarize", None]),
                tags=rnd.choice(tags),
                metadata={"n": i, "q": "x\u00e9"} if i % 3 == 0 else {},
                status="error" if rnd.random() < 0.08 else "ok",
                cost=cost,
            )
        )
    return out


def fill(target: str | Path, records: list[UsageRecord]) -> None:
    store = UsageStore(target)
    try:
        for record in records:
            store.submit(record)
        assert store.flush(60), "records were not stored"
    finally:
        store.close()
