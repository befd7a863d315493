"""``tokentrail.analytics.styled``: each column of an analytics frame shown in its own format."""

from __future__ import annotations

import pandas as pd

from tokentrail.analytics import styled
from tokentrail.formatting import money_digits


def cells(frame: pd.DataFrame) -> str:
    return str(styled(frame).to_html())


def test_tokens_money_shares_and_latency_each_in_their_format() -> None:
    frame = pd.DataFrame(
        {
            "model": ["gpt-4o", None],
            "calls": [1200, 3],
            "total_tokens": [7115109, 12],
            "cost": [12.5, 0.0042],
            "share": [0.5651, 0.0001],
            "p50_ms": [2172.5, 80.0],
        }
    )
    html = cells(frame)
    assert ">7,115,109<" in html and ">1,200<" in html
    assert ">$12.5000<" in html and ">$0.0042<" in html  # one precision for the column
    assert ">56.5%<" in html and ">0.0%<" in html
    assert ">2,172 ms<" in html or ">2,173 ms<" in html
    assert ">(all)<" in html and "NaN" not in html and "None" not in html


def test_a_summary_on_its_side_is_formatted_row_by_row() -> None:
    summary = pd.DataFrame([{"calls": 5, "input_tokens": 1000, "cost": 0.25, "error_rate": 0.2}])
    html = cells(summary.T)
    assert ">1,000<" in html and ">$0.2500<" in html and ">20.0%<" in html
    assert ".0000" not in html


def test_money_digits_follow_the_smallest_amount_of_a_column() -> None:
    assert money_digits([12, 3.5]) == 2
    assert money_digits([12, 0.0042]) == 4
    assert money_digits([0.0000021, 5]) == 6
    assert money_digits([0, None]) == 2


def test_a_trend_table_shows_cost_as_money_and_counts_whole() -> None:
    trend = pd.DataFrame(
        {
            "metric": ["cost", "total_tokens"],
            "current": [13.65266, 7129255.0],
            "previous": [13.949642, 7234547.0],
            "change": [-0.296982, -105292.0],
            "change_pct": [-2.129, -1.455],
        }
    )
    html = cells(trend)
    assert ">$13.6527<" in html and ">7,129,255<" in html and ">-105,292<" in html
    assert ">-2.1%<" in html and ">-1.5%<" in html  # already percent: not multiplied again
    assert ">0<" not in html  # the default 0, 1 index is hidden


def test_a_pivot_of_costs_is_money_in_every_column_and_dates_without_midnight() -> None:
    pivot = pd.DataFrame(
        {"gpt-4o": [0.240816, 0.284017], "o4-mini": [0.026751, 1.5]},
        index=pd.DatetimeIndex(["2026-11-28", "2026-11-29"], name="period"),
    )
    html = cells_of(styled(pivot, unit="money"))
    assert ">$0.2408<" in html and ">$1.5000<" in html and ">2026-11-28<" in html
    assert "00:00:00" not in html


def test_a_group_with_no_priced_call_shows_no_cost_not_zero() -> None:
    frame = pd.DataFrame(
        {"model": ["acme", "llama3.1:8b"], "calls": [50, 130], "cost": [0.0, 0.0]}
        | {"unpriced_calls": [50, 0]}
    )
    html = cells(frame)
    assert ">—<" in html  # acme: every call unpriced
    assert ">$0.00<" in html  # llama3.1:8b: a local model really costs nothing


def cells_of(style: object) -> str:
    return str(style.to_html())  # type: ignore[attr-defined]
