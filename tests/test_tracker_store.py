"""Tracker.record()/capture()/flush()/close() against a real DuckDB file."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from tokentrail import Tracker
from tokentrail.store import reading


@pytest.fixture(autouse=True)
def _state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


def rows(db: Path) -> list[dict[str, Any]]:
    with reading(db) as con:
        cur = con.execute(
            "SELECT * REPLACE (epoch_us(ts) AS ts, CAST(metadata AS VARCHAR) AS metadata) "
            "FROM usage ORDER BY ts, id"
        )
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def test_record_stores_a_priced_row_with_attribution(tmp_path: Path):
    db = tmp_path / "usage.duckdb"
    with Tracker(db, user_id="default-user", tags=["app"]) as tracker:
        rec = tracker.record(
            model="gpt-4o",
            usage={"input_tokens": 1000, "output_tokens": 100},
            session_id="s1",
            operation="chat",
            tags=["beta"],
            metadata={"k": "v"},
            latency_ms=42,
        )
        assert tracker.flush(10)
    (row,) = rows(db)
    assert row["id"] == rec.id
    assert row["provider"] == "openai"
    assert row["user_id"] == "default-user"
    assert (row["session_id"], row["operation"]) == ("s1", "chat")
    assert row["tags"] == ["app", "beta"]
    assert row["metadata"] == '{"k":"v"}'
    assert (row["input_tokens"], row["output_tokens"], row["total_tokens"]) == (1000, 100, 1100)
    assert row["latency_ms"] == 42.0
    assert row["total_cost"] == rec.total_cost
    if rec.cost is not None:  # the catalog prices gpt-4o
        assert row["cost_source"] == "catalog" and row["total_cost"] > 0


@pytest.mark.parametrize(
    "usage",
    [
        {"input_tokens": "abc", "output_tokens": -5, "cache_read_tokens": 10},
        {"input_tokens": 10, "reasoning_tokens": 50},
        42,
        ["not", "a", "mapping"],
        {"input_tokens": float("nan"), "bogus": 1},
    ],
)
def test_record_with_bad_usage_never_raises_and_stores_a_flagged_row(
    tmp_path: Path, usage: Any, caplog: pytest.LogCaptureFixture
):
    db = tmp_path / "usage.duckdb"
    caplog.set_level(logging.WARNING, logger="tokentrail")
    with Tracker(db) as tracker:
        rec = tracker.record(model="gpt-4o", usage=usage)
        assert tracker.flush(10)
    (row,) = rows(db)
    assert row["id"] == rec.id
    assert rec.usage.issues, "the problem is kept on the record"
    assert "usage_issues" in (row["metadata"] or "")
    assert row["input_tokens"] >= 0 and row["output_tokens"] >= 0
    assert row["cache_read_tokens"] <= row["input_tokens"]
    assert row["reasoning_tokens"] <= row["output_tokens"]


def test_record_with_unusable_arguments_still_stores_a_row(tmp_path: Path):
    db = tmp_path / "usage.duckdb"

    class Weird:
        def __str__(self) -> str:
            raise RuntimeError("no str for you")

    with Tracker(db) as tracker:
        tracker.record(
            model="gpt-4o",
            usage={"input_tokens": 1},
            latency_ms="fast",  # type: ignore[arg-type]
            ts="yesterday",  # type: ignore[arg-type]
            reported_cost="free",
            tags=5,  # type: ignore[arg-type]
        )
        tracker.record(model=Weird(), usage=None)  # type: ignore[arg-type]
        assert tracker.flush(10)
    got = rows(db)
    assert len(got) == 2
    assert got[0]["latency_ms"] is None or got[1]["latency_ms"] is None


def test_record_reads_a_dict_of_counts_as_they_are_and_keeps_the_estimated_flag(tmp_path: Path):
    db = tmp_path / "usage.duckdb"
    counts = {
        "input_tokens": 500,
        "output_tokens": 40,
        "cache_read_tokens": 100,
        "reasoning_tokens": 10,
    }
    with Tracker(db) as tracker:
        reported = tracker.record(model="gpt-4o", usage=dict(counts))
        estimated = tracker.record(model="gpt-4o", usage=dict(counts), estimated=True)
    u = reported.usage
    assert (u.input_tokens, u.output_tokens, u.cache_read_tokens, u.reasoning_tokens) == (
        500, 40, 100, 10
    )  # fmt: skip
    assert u.total_tokens == 540 and not u.estimated and not u.issues
    assert estimated.usage.estimated is True


def test_subscribers_see_every_record_and_a_failing_one_is_contained(tmp_path: Path):
    seen: list[str] = []
    with Tracker(tmp_path / "usage.duckdb") as tracker:
        tracker.subscribe(lambda r: seen.append(r.id))
        tracker.subscribe(lambda r: 1 / 0)
        rec = tracker.record(model="gpt-4o", usage={"input_tokens": 1})
    assert seen == [rec.id]


def test_close_is_idempotent_and_flushes(tmp_path: Path):
    db = tmp_path / "usage.duckdb"
    tracker = Tracker(db)
    rec = tracker.record(model="gpt-4o", usage={"input_tokens": 3})
    tracker.close()
    tracker.close()
    assert [r["id"] for r in rows(db)] == [rec.id]


def test_a_record_after_close_is_still_kept(tmp_path: Path):
    db = tmp_path / "usage.duckdb"
    tracker = Tracker(db)
    tracker.close()
    rec = tracker.record(model="gpt-4o", usage={"input_tokens": 3})
    assert tracker.flush(10)
    assert [r["id"] for r in rows(db)] == [rec.id]
    tracker.store.close()


def test_track_block_rows_carry_the_block_attribution(tmp_path: Path):
    db = tmp_path / "usage.duckdb"
    with Tracker(db) as tracker:
        with tracker.track(user_id="u9", operation="report") as run:
            tracker.record(model="gpt-4o", usage={"input_tokens": 10, "output_tokens": 1})
        assert run.summary().calls == 1
        assert tracker.flush(10)
    (row,) = rows(db)
    assert (row["user_id"], row["operation"]) == ("u9", "report")


def test_repeated_calls_are_repriced_when_an_override_changes_the_price(tmp_path: Path):
    from decimal import Decimal

    from tokentrail import pricing

    usage = {"input_tokens": 1_000_000, "output_tokens": 0}
    with Tracker(tmp_path / "usage.duckdb") as tracker:
        first = tracker.record(model="gpt-4o", usage=usage)
        again = tracker.record(model="gpt-4o", usage=usage)
        try:
            pricing.register("gpt-4o", provider="openai", input=1, output=2)
            overridden = tracker.record(model="gpt-4o", usage=usage)
        finally:
            pricing.clear_overrides()
        restored = tracker.record(model="gpt-4o", usage=usage)
    assert first.cost is not None and again.cost is not None and restored.cost is not None
    assert again.cost == first.cost == restored.cost
    assert overridden.cost is not None and overridden.cost.total == Decimal(1)
    assert overridden.cost.source == "override"


def test_with_a_budget_another_process_sees_the_spend_before_the_rows_are_stored(
    tmp_path: Path,
):
    """Guards of other processes read spend from the shared ledger, not the database: a
    budget no longer makes the writer store every second, and the spend is seen at once."""
    import subprocess
    import sys

    db = tmp_path / "usage.duckdb"
    with Tracker(db) as tracker:
        tracker.store.max_delay = 3600.0
        tracker.budget(tokens=100, per="day", scope="global")
        tracker.record(model="gpt-4o", usage={"input_tokens": 10, "output_tokens": 1})
        assert tracker.store.max_delay == 3600.0
        other = subprocess.run(
            [sys.executable, "-c", (
                "import sys, tokentrail\n"
                "t = tokentrail.Tracker(sys.argv[1])\n"
                "t.budget(tokens=100, per='day', scope='global')\n"
                "print(t.budget_status()[0].spent)\n"
                "t.close()"
            ), str(db)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert other.returncode == 0, other.stderr
        assert other.stdout.strip() == "11"
