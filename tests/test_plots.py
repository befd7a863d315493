"""Charts: each returns a Figure with titled, labelled axes, money on money axes."""

from __future__ import annotations

import dataclasses
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import matplotlib.dates as mdates
import pytest

from tests.analytics_data import R1, R2, R3, R4, write_db
from tokentrail import plots
from tokentrail.analytics import Analytics


@pytest.fixture()
def analytics(tmp_path: Path) -> Analytics:
    return Analytics(write_db(tmp_path / "usage.duckdb", [R1, R2, R3, R4]))


def texts(fig: object) -> str:
    return " ".join(t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")))  # type: ignore[attr-defined]


def test_cost_over_time_stacks_models(analytics: Analytics, tmp_path: Path) -> None:
    fig = plots.cost_over_time(analytics, "day")
    ax = fig.axes[0]
    assert ax.get_ylabel() == "Spend (USD)"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["gpt-4o", "claude", "mystery"]
    heights = sorted(round(p.get_height(), 6) for p in ax.patches if p.get_height() > 0)
    assert heights == [0.003, 0.004, 0.0045]  # one bar per model-day with spend
    assert ax.yaxis.get_major_formatter()(0.0045, 0) == "$0.0045"
    out = tmp_path / "spend.png"
    fig.savefig(out)
    assert out.stat().st_size > 5000


def test_cost_by_model_labels_bars_with_dollars_and_share(analytics: Analytics) -> None:
    fig = plots.cost_by_model(analytics)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["mystery", "claude", "gpt-4o"]
    assert "$0.0085 (74%)" in texts(fig)
    assert "+1 unpriced" in texts(fig)


def test_usage_by_operation_splits_tokens(analytics: Analytics) -> None:
    fig = plots.usage_by_operation(analytics)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Tokens"
    widths = sum(p.get_width() for p in ax.patches)
    assert widths == pytest.approx(3910)  # uncached + cached input + output
    assert "$0.0085" in texts(fig)  # chat spend: r1 + r4 (r3 unpriced)


def test_token_mix_and_cache_hit_rate(analytics: Analytics) -> None:
    fig = plots.token_mix(analytics, "day")
    assert fig.axes[0].get_ylabel() == "Tokens"
    fig = plots.cache_hit_rate(analytics, "day")
    line = fig.axes[0].get_lines()[0]
    # per day: 400/1500 on the 20th, 0/500 on the 21st, 1000/2100 on the 22nd
    assert list(line.get_ydata()) == pytest.approx([400 / 1000 * 100, 0, 1000 / 2100 * 100])
    assert "Whole range: 39%" in texts(fig)


def test_empty_store_draws_a_note(tmp_path: Path) -> None:
    empty = tmp_path / "none.duckdb"
    for draw in (plots.cost_over_time, plots.cost_by_model, plots.usage_by_operation):
        assert "No calls in this range" in texts(draw(empty))


def test_tiny_amounts_keep_two_significant_digits_on_axes_and_labels(tmp_path: Path) -> None:
    assert plots.money(0.000029) == "$0.000029"
    assert plots.money(0.0005) == "$0.0005"
    embedding = dataclasses.replace(
        R1, id="tiny", model="text-embedding-3-small", cost=None, user_id="u"
    )
    db = write_db(tmp_path / "tiny.duckdb", [R1, embedding])
    with duckdb.connect(str(db)) as con:
        con.execute("UPDATE usage SET total_cost = 0.000029 WHERE id = 'tiny'")
    assert "$0.000029 (" in texts(plots.cost_by_model(db))  # not "$0.0000"


@pytest.mark.parametrize("draw", [plots.cost_over_time, plots.token_mix, plots.cache_hit_rate])
def test_a_single_day_is_drawn_on_a_day_axis(tmp_path: Path, draw: Any) -> None:
    # One day of calls (a first run): matplotlib alone would span the axis over years for
    # one point, or over hours for one bar, warn, and draw no area at all.
    when = datetime(2026, 11, 23, 17, 42, tzinfo=timezone.utc)
    db = write_db(tmp_path / "day.duckdb", [dataclasses.replace(R1, ts=when)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. AutoDateLocator's "unable to pick an interval"
        fig = draw(db, "day")
        fig.savefig(tmp_path / "day.png")
        fig.canvas.draw()
    ax = fig.axes[0]
    low, high = ax.get_xlim()
    day = mdates.date2num(datetime(2026, 11, 23))
    assert low < day < high and 1 <= high - low <= 2
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert labels == ["Nov 23"]
    if draw is not plots.cache_hit_rate:  # bars with a height: something to see
        assert [p for p in ax.patches if p.get_height() > 0]


def test_token_mix_stacks_input_and_output_per_day(analytics: Analytics) -> None:
    ax = plots.token_mix(analytics, "day").axes[0]
    heights = sum(p.get_height() for p in ax.patches)
    assert heights == pytest.approx(3910)  # every token of the three days, once
