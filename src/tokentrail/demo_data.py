"""Realistic usage history for demos, notebooks and tests.

:func:`generate` writes a month (or any number of days) of calls shaped like a small
team's LLM product: a handful of models from several providers, a dozen users of very
different weight, operations with their own prompt and answer sizes, prompt caching on
long conversations, reasoning tokens, busy weekdays and quiet weekends, working-hours
peaks, slow growth, one batch-job spike, a few errors, a local model and an experimental
model the catalog does not price. Records go through ``Tracker.capture`` so they are
priced and stored exactly like real calls.

Example::

    from tokentrail import Tracker, demo_data
    with Tracker("demo.duckdb") as tracker:
        demo_data.generate(tracker, days=30)        # ~6,000 calls, deterministic (seed=7)
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from .records import Framework, UsageRecord, new_id
from .usage import Usage

if TYPE_CHECKING:
    from .tracker import Tracker

__all__ = ["MODELS", "OPERATIONS", "USERS", "Operation", "demo_records", "generate"]

#: (model, provider, relative price weight for choosing it): what the demo team uses.
MODELS: dict[str, str] = {
    "gpt-4o": "openai",
    "gpt-4o-mini": "openai",
    "o4-mini": "openai",
    "claude-sonnet-4-5": "anthropic",
    "claude-haiku-4-5": "anthropic",
    "gemini-2.5-flash": "google",
    "text-embedding-3-small": "openai",
    "llama3.1:8b": "ollama",
    "acme-experimental-1": "acme",  # not in any catalog: stored with an unknown cost
}

#: Users and how much each uses the product (a few heavy users, a long tail).
USERS: dict[str, float] = {
    "alice": 9.0,
    "bob": 6.0,
    "carol": 4.5,
    "dave": 3.0,
    "erin": 2.2,
    "frank": 1.6,
    "grace": 1.2,
    "heidi": 0.9,
    "ivan": 0.7,
    "judy": 0.5,
    "mallory": 0.3,
    "batch-job": 0.0,  # only on the spike day
}


@dataclass(frozen=True)
class Operation:
    """One kind of call: how often, on which models, and how big its prompts and answers are."""

    name: str
    weight: float
    models: dict[str, float]
    #: Median input and output tokens (log-normal around them).
    input_median: int
    output_median: int
    #: Chance that part of the prompt is read from a prompt cache, and how much of it.
    cache_chance: float = 0.0
    cache_share: tuple[float, float] = (0.5, 0.9)
    framework: Framework = "langchain"
    tags: tuple[str, ...] = ("prod",)


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "chat",
        10,
        {"gpt-4o-mini": 5, "claude-haiku-4-5": 3, "gpt-4o": 2, "llama3.1:8b": 1},
        2400,
        350,
        cache_chance=0.55,
    ),
    Operation(
        "rag-answer",
        6,
        {"claude-sonnet-4-5": 4, "gpt-4o": 3, "gemini-2.5-flash": 2},
        6500,
        450,
        cache_chance=0.4,
        framework="llamaindex",
    ),
    Operation(
        "embed",
        7,
        {"text-embedding-3-small": 1},
        900,
        0,
        framework="llamaindex",
    ),
    Operation(
        "summarize",
        3,
        {"claude-sonnet-4-5": 3, "gpt-4o": 1, "gemini-2.5-flash": 2},
        12000,
        700,
        cache_chance=0.2,
    ),
    Operation(
        "agent-step",
        3,
        {"o4-mini": 3, "claude-sonnet-4-5": 2, "gpt-4o": 1},
        9000,
        1200,
        cache_chance=0.75,
        cache_share=(0.6, 0.95),
    ),
    Operation(
        "classify",
        4,
        {"gpt-4o-mini": 3, "claude-haiku-4-5": 1, "acme-experimental-1": 0.4},
        600,
        12,
        framework="manual",
        tags=("prod", "beta"),
    ),
)

# Relative traffic by hour of day (UTC): a working-day curve with a quiet night.
_HOURLY = [
    0.15, 0.1, 0.08, 0.08, 0.1, 0.2, 0.45, 0.8, 1.2, 1.5, 1.6, 1.55,
    1.3, 1.45, 1.6, 1.55, 1.4, 1.1, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2,
]  # fmt: skip

_REASONING_MODELS = ("o4-mini",)


def _lognormal(rng: random.Random, median: float, sigma: float = 0.55) -> int:
    return max(1, int(median * math.exp(rng.gauss(0, sigma))))


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    names = list(weights)
    return rng.choices(names, weights=[weights[n] for n in names])[0]


def demo_records(
    days: int = 30,
    *,
    calls_per_day: int = 200,
    seed: int = 7,
    end: datetime | None = None,
) -> Iterator[UsageRecord]:
    """Unpriced records for the ``days`` days before ``end`` (default now), oldest first.

    Deterministic for a given ``seed`` and ``end``. About ``calls_per_day`` calls on an
    average weekday, fewer at weekends; traffic grows ~25% over the period.
    """
    rng = random.Random(seed)
    end = (end or datetime.now(timezone.utc)).astimezone(timezone.utc)
    first_day = (end - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    spike_day = days // 2 if days >= 4 else -1
    user_weights = {u: w for u, w in USERS.items() if w > 0}
    op_weights = {op.name: op.weight for op in OPERATIONS}
    ops = {op.name: op for op in OPERATIONS}
    for d in range((end - first_day).days + 1):
        day = first_day + timedelta(days=d)
        weekend = day.weekday() >= 5
        growth = 1 + 0.25 * d / max(days, 1)
        n = int(calls_per_day * growth * (0.35 if weekend else 1.0) * rng.uniform(0.85, 1.15))
        stamps = sorted(
            day
            + timedelta(
                hours=rng.choices(range(24), weights=_HOURLY)[0], seconds=rng.random() * 3600
            )
            for _ in range(n)
        )
        records = [
            _call(rng, ts, _pick(rng, user_weights), ops[_pick(rng, op_weights)]) for ts in stamps
        ]
        if d == spike_day:  # a nightly batch job re-summarizes the archive
            base = day + timedelta(hours=2)
            records += [
                _call(
                    rng, base + timedelta(seconds=7 * i), "batch-job", ops["summarize"], tag="batch"
                )
                for i in range(int(calls_per_day * 0.8))
            ]
            records.sort(key=lambda r: r.ts)
        for record in records:
            if record.ts < end:
                yield record


def _call(
    rng: random.Random, ts: datetime, user: str, op: Operation, tag: str | None = None
) -> UsageRecord:
    model = _pick(rng, op.models)
    input_tokens = _lognormal(rng, op.input_median)
    output_tokens = _lognormal(rng, op.output_median, 0.7) if op.output_median else 0
    cache_read = 0
    cache_write = 0
    if op.cache_chance and rng.random() < op.cache_chance and input_tokens > 1024:
        cache_read = int(input_tokens * rng.uniform(*op.cache_share))
    elif op.cache_chance and MODELS[model] == "anthropic" and rng.random() < 0.2:
        cache_write = int(input_tokens * 0.6)  # the first turn of a cached conversation
    reasoning = int(output_tokens * rng.uniform(0.4, 0.8)) if model in _REASONING_MODELS else 0
    status = "ok"
    error_type = None
    if rng.random() < 0.015:
        status, error_type, output_tokens, reasoning = "error", "RateLimitError", 0, 0
    latency = 250 + output_tokens * rng.uniform(6, 14) + input_tokens * 0.03
    if op.name == "embed":
        latency = 40 + input_tokens * 0.05
    session = f"{user}-{ts:%m%d}-{ts.hour // 4}"
    return UsageRecord(
        model=model,
        provider=MODELS[model],
        usage=Usage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
            reasoning_tokens=reasoning,
        ),
        framework=op.framework,
        id=new_id(),
        ts=ts,
        latency_ms=round(latency * rng.uniform(0.8, 1.3), 1),
        user_id=user,
        session_id=session,
        operation=op.name,
        tags=(*op.tags, tag) if tag else op.tags,
        streamed=op.name == "chat",
        status=status,  # type: ignore[arg-type]
        error_type=error_type,
        request_id=f"req_{rng.getrandbits(48):012x}",
    )


def generate(
    target: Tracker | str | Path | None = None,
    days: int = 30,
    *,
    calls_per_day: int = 200,
    seed: int = 7,
    end: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Write ``days`` days of demo usage through a tracker (or into the database ``target``).

    Records are priced by the catalog and stored like real calls. ``progress(done, total)``
    is called every few hundred records. Returns the number of records written.
    """
    from .tracker import Tracker

    records: Sequence[UsageRecord] = list(
        demo_records(days, calls_per_day=calls_per_day, seed=seed, end=end)
    )
    own = not isinstance(target, Tracker)
    tracker = Tracker(target) if not isinstance(target, Tracker) else target
    try:
        total = len(records)
        for i, record in enumerate(records, 1):
            tracker.capture(record)
            if progress is not None and (i % 250 == 0 or i == total):
                progress(i, total)
        tracker.flush()
    finally:
        if own:
            tracker.close()
    return len(records)
