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
