"""Readable DataFrames in a notebook: each column formatted by what it holds.

The analytics methods return plain DataFrames (numbers stay numbers for further work);
:func:`styled` only changes how one is shown: token counts as whole numbers with
separators, money with one number of decimals per column, ratios as percent, latencies in
milliseconds, a missing key as ``(all)``.

Example::

    from tokentrail.analytics import styled
    styled(tracker.analytics.by_model())
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..formatting import count, money, money_digits, percent

__all__ = ["styled"]

Formatter = Callable[[Any], str]

_RATIOS = ("share", "rate", "error_rate", "cache_hit_rate", "estimated_share", "reasoning_share")
_MONEY_WORDS = ("cost", "savings", "spent", "limit", "remaining", "projected", "month_to_date")


def _kind(name: str) -> str:
    """``count``, ``money``, ``ratio``, ``ms``, ``key`` or ``other`` for a column name."""
    if name in _RATIOS or name.endswith(("_share", "_rate", "_pct")) or name == "percent":
        return "ratio"
    if any(word in name for word in _MONEY_WORDS) or name.endswith("_per_day"):
        return "money"
    if name.endswith("_ms"):
        return "ms"
    if name in ("calls", "errors", "days_left", "lookback_days") or name.endswith(
        ("_tokens", "_calls", "_count", "tokens_unpriced")
    ):
        return "count"
    if name in ("key", "user_id", "session_id", "operation", "model"):
        return "key"
    return "other"


def _formatter(kind: str, values: list[Any]) -> Formatter | None:
    if kind == "count":
        return count
    if kind == "ratio":
        return percent
    if kind == "ms":
        return lambda v: "—" if v is None or v != v else f"{float(v):,.0f} ms"
    if kind == "money":
        digits = money_digits(values)
        return lambda v: money(v, digits)
    if kind == "key":
        return lambda v: "(all)" if v is None or v != v else str(v)
    return None


def styled(frame: Any) -> Any:
    """A pandas ``Styler`` that shows ``frame`` with each column in its own format.

    A one-row summary turned on its side (``summary.T``) is formatted row by row.
    """
    import pandas as pd

    style = frame.style
    by_row = len(frame.columns) <= 2 and all(isinstance(i, str) for i in frame.index)
    names = list(frame.index) if by_row else list(frame.columns)
    for name in names:
        values = list(frame.loc[name]) if by_row else list(frame[name])
        fmt = _formatter(_kind(str(name)), values)
        if fmt is None:
            continue
        subset = pd.IndexSlice[[name], :] if by_row else [name]
        style = style.format(fmt, subset=subset)
    return style
