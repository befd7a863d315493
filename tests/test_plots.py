"""Charts: each returns a Figure with titled, labelled axes, money on money axes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_analytics import R1, R2, R3, R4, write_db
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
