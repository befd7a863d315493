"""Costs worked out by DuckDB at ingest equal the ones Python works out, to the last digit.

The tracker prices the usual call lazily (``pricing.lazy``): the spool carries each leaf's
price per token and DuckDB multiplies the leaves out when it stores the row. Here the same
records are stored twice, once that way and once with every figure worked out in Python
first, over the whole catalog and token counts that exercise every leaf; the rows must be
identical. Then the ``LazyCost`` object itself: equal to the eager ``Cost``, frozen,
pickled as a plain ``Cost``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tokentrail import Tracker, pricing
from tokentrail.pricing.lazy import LazyCost, rate_cells
from tokentrail.pricing.types import Cost
from tokentrail.records import COLUMNS, MONEY_COLUMNS, UsageRecord
from tokentrail.store import UsageStore, reading
from tokentrail.store.paths import primary_spool_dir
from tokentrail.store.spool import SEGMENT_SUFFIX, encode, frame
from tokentrail.usage import Usage


@pytest.fixture(autouse=True)
def _state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


def random_usage(rng: random.Random) -> Usage:
    """Counts that split into leaves, with every kind of subset now and then."""
    n_in = rng.choice([0, 1, 7, 999, rng.randrange(0, 200_000), rng.randrange(0, 3_000_000)])
    read = rng.randrange(0, n_in + 1) if rng.random() < 0.5 else 0
    write = rng.randrange(0, n_in - read + 1) if rng.random() < 0.4 else 0
    w1h = rng.randrange(0, write + 1) if write and rng.random() < 0.5 else 0
    audio_in = rng.randrange(0, n_in - read - write + 1) if rng.random() < 0.2 else 0
    n_out = rng.choice([0, 1, rng.randrange(0, 5_000), rng.randrange(0, 100_000)])
    reasoning = rng.randrange(0, n_out + 1) if rng.random() < 0.4 else 0
    audio_out = rng.randrange(0, n_out - reasoning + 1) if rng.random() < 0.2 else 0
    return Usage(
        input_tokens=n_in,
        output_tokens=n_out,
        cache_read_tokens=read,
        cache_write_tokens=write,
        cache_write_1h_tokens=w1h,
        input_audio_tokens=audio_in,
        reasoning_tokens=reasoning,
        output_audio_tokens=audio_out,
    )


def rows_by_id(db: Path) -> dict[str, dict[str, Any]]:
    with reading(db) as con:
        cur = con.execute(
            "SELECT * REPLACE (CAST(metadata AS VARCHAR) AS metadata) FROM usage ORDER BY id"
        )
        names = [d[0] for d in cur.description]
        return {row[0]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}


def test_duckdb_prices_every_catalog_model_exactly_as_python_does(tmp_path: Path):
    pricer = pricing.default_pricer()
    # Single-price models that their own id names (fine-tune patterns and such aside).
    entries = [
        e for e in pricing.models() if e.fixed and pricer.find(e.id, e.provider or None) is e
    ]
    assert len(entries) > 50, "the catalog should have many single-price models"
    rng = random.Random(20261123)
    lazy_db, eager_db = tmp_path / "lazy.duckdb", tmp_path / "eager.duckdb"
    lazy_store = UsageStore(lazy_db, interval=3600)
    eager_store = UsageStore(eager_db, interval=3600)
    lazy_seen = 0
    for i in range(1500):
        entry = entries[i % len(entries)]
        usage = random_usage(rng)
        record = UsageRecord(model=entry.id, provider=entry.provider or None, usage=usage)
        record.cost = pricer.usage_cost(entry.id, entry.provider or None, usage, record.ts)
        lazy_seen += type(record.cost) is LazyCost and record.cost.pending is not None
        lazy_store.submit(record)
        # The same record with every figure worked out in Python before it is spooled.
        eager = dataclasses.replace(
            record, cost=pricing.cost(entry.id, provider=entry.provider or None, usage=usage)
        )
        assert type(eager.cost) is Cost
        eager_store.submit(eager)
    for store in (lazy_store, eager_store):
        assert store.flush(60)
        store.close()
    assert lazy_seen > 1000, "most calls should take the lazy path"
    lazy_rows, eager_rows = rows_by_id(lazy_db), rows_by_id(eager_db)
    assert len(lazy_rows) == len(eager_rows) == 1500
    for rid, row in lazy_rows.items():
        assert row == eager_rows[rid], rid
    priced = sum(1 for row in lazy_rows.values() if row["total_cost"])
    assert priced > 1000, "the comparison should cover real, non-zero figures"


def test_the_tracker_stores_lazily_priced_calls_with_their_exact_cost(tmp_path: Path):
    db = tmp_path / "usage.duckdb"
    usage = Usage(
        input_tokens=12_345,
        output_tokens=2_000,
        cache_read_tokens=4_000,
        cache_write_tokens=3_000,
        cache_write_1h_tokens=1_000,
        reasoning_tokens=500,
    )
    with Tracker(db) as tracker:
        record = tracker.record(model="claude-sonnet-4-5", usage=usage)
        assert type(record.cost) is LazyCost and record.cost.pending is not None
        tracker.flush()
        eager = pricing.cost("claude-sonnet-4-5", usage=usage)
        assert eager is not None
        row = rows_by_id(db)[record.id]
    for column in MONEY_COLUMNS:
        field = "total" if column == "total_cost" else column
        assert row[column] == getattr(eager, field), column
    assert row["priced_model"] == eager.model
    assert row["catalog_version"] == eager.catalog_version
    # Read in Python afterwards: the same figures.
    assert record.cost == eager and record.total_cost == eager.total


def test_a_lazy_cost_behaves_as_the_cost_it_stands_for():
    usage = Usage(input_tokens=1_000, output_tokens=250, cache_read_tokens=200)
    eager = pricing.cost("gpt-4o", usage=usage)
    lazy = pricing.default_pricer().usage_cost("gpt-4o", "openai", usage)
    assert eager is not None and type(lazy) is LazyCost
    assert isinstance(lazy, Cost)
    assert lazy.pending is not None
    assert lazy == eager and eager == lazy and hash(lazy) == hash(eager)
    assert lazy.pending is None  # worked out once, by the first read
    assert repr(lazy) == repr(eager)
    assert type(pickle.loads(pickle.dumps(lazy))) is Cost
    assert pickle.loads(pickle.dumps(lazy)) == eager
    assert copy.copy(lazy) == eager and copy.deepcopy(lazy) == eager
    assert dataclasses.asdict(lazy) == dataclasses.asdict(eager)
    changed = dataclasses.replace(lazy, model="other")
    assert changed.model == "other" and changed.total == eager.total
    with pytest.raises(dataclasses.FrozenInstanceError):
        lazy.total = Decimal(1)  # type: ignore[misc]
    with pytest.raises(AttributeError):
        _ = lazy.no_such_field  # type: ignore[attr-defined]


def test_a_replaced_lazy_cost_is_spooled_with_its_figures(tmp_path: Path):
    usage = Usage(input_tokens=1_000, output_tokens=250)
    lazy = pricing.default_pricer().usage_cost("gpt-4o", "openai", usage)
    changed = dataclasses.replace(lazy, catalog_version="test")
    record = UsageRecord(model="gpt-4o", provider="openai", usage=usage, cost=changed)
    row = encode(record)
    assert len(row) == len(COLUMNS)
    assert row[COLUMNS.index("total_cost")] == str(changed.total)


def test_prices_finer_than_the_column_are_worked_out_in_python():
    # 1.234567891234 per million tokens: 18 decimal places per token, more than
    # DECIMAL(18, 12) holds, so DuckDB would round the leaves.
    assert rate_cells((Decimal("1.234567891234") / 1_000_000, None)) is None
    assert rate_cells((Decimal("2.5") / 1_000_000, None)) == ("r1", "0.0000025", None)
    assert rate_cells((Decimal("1E+6"),)) is None


def test_a_model_with_such_a_price_is_priced_eagerly_and_stored_as_before(tmp_path: Path):
    pricing.register("fine-priced-model", provider="openai", input="1.234567891234", output="3")
    try:
        usage = Usage(input_tokens=1_000_003, output_tokens=7)
        cost = pricing.default_pricer().usage_cost("fine-priced-model", "openai", usage)
        assert cost is not None and type(cost) is Cost
        db = tmp_path / "usage.duckdb"
        with Tracker(db) as tracker:
            record = tracker.record(model="fine-priced-model", provider="openai", usage=usage)
            tracker.flush()
            row = rows_by_id(db)[record.id]
        assert row["total_cost"] == cost.total.quantize(Decimal("1E-12"))
    finally:
        pricing.clear_overrides()


def test_an_unreadable_price_cell_makes_the_cost_unknown_not_zero(tmp_path: Path):
    db = tmp_path / "usage.duckdb"
    usage = Usage(input_tokens=1_000, output_tokens=250)
    record = UsageRecord(model="gpt-4o", provider="openai", usage=usage)
    record.cost = pricing.default_pricer().usage_cost("gpt-4o", "openai", usage)
    cells = list(json.loads(frame(encode(record))))
    assert cells[len(COLUMNS)] == "r1"
    cells[len(COLUMNS) + 1] = "not a price"  # the input leaf's price
    segment = primary_spool_dir(db) / f"999999-deadbeef0000-00000001{SEGMENT_SUFFIX}"
    segment.parent.mkdir(parents=True)
    segment.write_text(json.dumps(cells) + "\n")
    with UsageStore(db) as store:
        assert store.flush(10)
    row = rows_by_id(db)[record.id]
    assert row["input_cost"] is None and row["total_cost"] is None
    assert row["output_cost"] == Decimal("0.0025")  # 250 tokens at $10 per million


def test_calls_kept_in_memory_when_no_spool_can_be_written_are_priced_at_ingest_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from tokentrail.store import writer

    def no_spool(*args: Any, **kwargs: Any) -> None:
        raise OSError("read-only file system")

    monkeypatch.setattr(writer, "SpoolWriter", no_spool)
    db = tmp_path / "usage.duckdb"
    usage = Usage(input_tokens=5_000, output_tokens=300, cache_read_tokens=1_000)
    store = UsageStore(db, interval=3600)
    record = UsageRecord(model="gpt-4o", provider="openai", usage=usage)
    record.cost = pricing.default_pricer().usage_cost("gpt-4o", "openai", usage)
    assert type(record.cost) is LazyCost and record.cost.pending is not None
    store.submit(record)
    assert len(store._memory) == 1
    assert store.flush(10)
    store.close()
    eager = pricing.cost("gpt-4o", usage=usage)
    assert eager is not None
    assert rows_by_id(db)[record.id]["total_cost"] == eager.total
