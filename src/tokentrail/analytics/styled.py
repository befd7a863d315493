"""Readable DataFrames in a notebook: each column formatted by what it holds.

The analytics methods return plain DataFrames (numbers stay numbers for further work);
:func:`styled` only changes how one is shown: token counts as whole numbers with
separators, money with one number of decimals per column, ratios as percent, latencies in
milliseconds, a missing key as ``(all)``, a group whose calls all lack a price as ``—``
rather than ``$0``.

Example::

    from tokentrail.analytics import styled
    styled(tracker.analytics.by_model())
    styled(daily.pivot_table(index="period", columns="model", values="cost"), unit="money")
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..formatting import count, money, money_digits, percent

__all__ = ["styled"]

Formatter = Callable[[Any], str]

_RATIOS = ("share", "rate", "error_rate", "cache_hit_rate", "estimated_share", "reasoning_share")
_MONEY_WORDS = ("cost", "savings", "spent", "limit", "remaining", "projected", "month_to_date")
_KEYS = ("key", "user_id", "session_id", "operation", "model")


def _missing(value: Any) -> bool:
    """None, NaN or NaT."""
    return value is None or bool(value != value)


def _kind(name: str) -> str:
    """What a column holds, from its name: count, money, ratio, points, ms, key or number."""
    if name.endswith("_pct"):
        return "points"  # already a percentage (12.5 means 12.5%)
    if name in _RATIOS or name.endswith(("_share", "_rate")) or name == "percent":
        return "ratio"
    if any(word in name for word in _MONEY_WORDS) or name.endswith("_per_day"):
        return "money"
    if name.endswith("_ms"):
        return "ms"
    if name in ("calls", "errors", "days_left", "lookback_days") or name.endswith(
        ("_tokens", "_calls", "_count", "tokens_unpriced")
    ):
        return "count"
    if name in _KEYS:
        return "key"
    return "number"


def _number(value: Any) -> str:
    if _missing(value):
        return "—"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:,.2f}" if abs(value) >= 1 or value == 0 else f"{value:.3g}"


def _formatter(kind: str, values: list[Any]) -> Formatter:
    if kind == "count":
        return count
    if kind == "ratio":
        return percent
    if kind == "points":
        return lambda v: "—" if _missing(v) else f"{float(v):+.1f}%"
    if kind == "ms":
        return lambda v: "—" if _missing(v) else f"{float(v):,.0f} ms"
    if kind == "money":
        digits = money_digits(values)
        return lambda v: money(v, digits)
    if kind == "key":
        return lambda v: "(all)" if _missing(v) else str(v)
    return _number


def _without_guessed_zeros(frame: Any) -> Any:
    """A copy where a group whose calls all lack a price shows no cost (not ``$0``)."""
    if not {"cost", "calls", "unpriced_calls"} <= set(frame.columns):
        return frame
    shown = frame.copy()
    unpriced = (shown["calls"] > 0) & (shown["unpriced_calls"] == shown["calls"])
    shown["cost"] = shown["cost"].astype(float).mask(unpriced)
    return shown


def styled(frame: Any, unit: str | None = None) -> Any:
    """A pandas ``Styler`` that shows ``frame`` with each column in its own format.

    ``unit`` (``"money"``, ``"count"``, ``"ratio"``) formats every column alike, for a pivot
    whose columns are models or users. A one-row summary turned on its side (``summary.T``)
    and a ``trend()`` table (one metric per row) are formatted row by row.
    """
    import pandas as pd

    frame = _without_guessed_zeros(frame)
    style = frame.style
    if isinstance(frame.index, pd.RangeIndex):
        style = style.hide(axis="index")
    elif isinstance(frame.index, pd.DatetimeIndex):
        style = style.format_index(lambda t: _moment(t))
    if unit is not None:
        numeric = list(frame.select_dtypes("number").columns)
        values = [v for c in numeric for v in frame[c]]
        return style.format(_formatter(unit, values), subset=numeric)
    if "metric" in frame.columns:  # trend(): cost in one row, token counts in others
        for i, metric in zip(frame.index, frame["metric"], strict=True):
            columns = [c for c in ("current", "previous", "change") if c in frame.columns]
            kind = "money" if "cost" in str(metric) else "count"
            values = list(frame.loc[i, columns])
            style = style.format(_formatter(kind, values), subset=pd.IndexSlice[[i], columns])
        columns = [c for c in frame.columns if c not in ("metric", "current", "previous", "change")]
    else:
        columns = list(frame.columns)
    by_row = len(frame.columns) <= 2 and all(isinstance(i, str) for i in frame.index)
    names = list(frame.index) if by_row else columns
    for name in names:
        values = list(frame.loc[name]) if by_row else list(frame[name])
        subset = pd.IndexSlice[[name], :] if by_row else [name]
        if not by_row and frame[name].dtype.kind in "Mm":
            style = style.format(_moment, subset=subset)
            continue
        style = style.format(_formatter(_kind(str(name)), values), subset=subset)
    return style


def _moment(value: Any) -> str:
    """A time as ``2026-11-04`` at midnight, else ``2026-11-04 17:29`` (no microseconds)."""
    if _missing(value) or not hasattr(value, "strftime"):
        return "—" if _missing(value) else str(value)
    midnight = (value.hour, value.minute, value.second) == (0, 0, 0)
    return str(value.strftime("%Y-%m-%d" if midnight else "%Y-%m-%d %H:%M"))
