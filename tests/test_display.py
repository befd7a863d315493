"""Notebook displays: Tracker, summaries and the shared number formats."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from tests.analytics_data import R1, R2, R3, R4, write_db
from tokentrail import Tracker
from tokentrail.analytics import Analytics
from tokentrail.display import SummaryView, count, money, percent, tracker_html


def test_formats() -> None:
    assert money(Decimal("1234.5")) == "$1,234.50"
    assert money(0.0085) == "$0.0085"
    assert money(0.00002) == "$0.000020"
    assert money(-2) == "-$2.00"
    assert money(None) == "—" and money(float("nan")) == "—"
    # A cost too small for the decimals shown is not written as free.
    assert money(Decimal("0.0000001")) == "<$0.000001"
    assert money(0.004, digits=2) == "<$0.01"
    assert money(0) == "$0.00"
    assert count(1234567) == "1,234,567"
    assert percent(0.25) == "25.0%"


def test_tracker_shows_path_defaults_and_totals(tmp_path: Path) -> None:
    path = write_db(tmp_path / "usage.duckdb", [R1, R2, R3, R4])
    with Tracker(path, user_id="u<1>") as tracker:
        page = tracker._repr_html_()
        assert page == tracker_html(tracker)
    assert str(path) in page
    assert "u&lt;1&gt;" in page  # escaped
    assert "$0.0115" in page and "1 unpriced" in page
    assert "3,910" in page


def test_tracker_display_with_a_budget(tmp_path: Path) -> None:
    with Tracker(tmp_path / "b.duckdb") as tracker:
        tracker.budget(usd=5, per="day", scope="global")
        tracker.record(model="gpt-4o", provider="openai", usage={"input_tokens": 1000})
        page = tracker._repr_html_()
    assert "Budgets" in page and "$5.00" in page


def test_summary_view_tiles(tmp_path: Path) -> None:
    path = write_db(tmp_path / "usage.duckdb", [R1, R2, R3, R4])
    view = SummaryView(Analytics(path).summary())
    tiles = {label: (value, note) for label, value, note in view.tiles()}
    assert tiles["Spend"] == ("$0.0115", "1 unpriced")
    assert tiles["Calls"] == ("4", "25.0% errors")
    assert tiles["Cache savings"][1] == "hit rate 38.9%"
    assert "<div" in view._repr_html_() and "$0.0115" in view._repr_html_()
    assert "Spend: $0.0115" in repr(view)
