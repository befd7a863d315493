"""Charts of where the money goes (matplotlib, imported only when a chart is drawn).

Every function takes the data source first — a :class:`~tokentrail.Tracker`, an
:class:`~tokentrail.analytics.Analytics`, a database path or ``None`` for the default
database — plus the usual ``since``/``until``/filters, and returns a matplotlib
``Figure`` (pass ``ax=`` to draw into your own axes instead). Figures are built without
pyplot, so nothing is shown twice in notebooks and nothing needs a display.

Example::

    from tokentrail import plots
    fig = plots.cost_over_time(tracker, period="day", since="30d")
    fig.savefig("spend.png")
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from . import formatting
from .analytics import Analytics
from .timeparse import TimeLike

__all__ = [
    "PALETTE",
    "cache_hit_rate",
    "cost_by_model",
    "cost_over_time",
    "token_mix",
    "usage_by_operation",
]

#: Colour-blind-friendly colours (Okabe-Ito, then greys for "other").
PALETTE: tuple[str, ...] = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#000000",
)
_OTHER = "#B0B0B0"
_INK = "#333333"


def _analytics(source: Any) -> Analytics:
    if isinstance(source, Analytics):
        return source
    analytics = getattr(source, "analytics", None)  # a Tracker
    if isinstance(analytics, Analytics):
        return analytics
    return Analytics(source)


def _axes(ax: Any, size: tuple[float, float]) -> tuple[Any, Any]:
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=100, layout="constrained")
    return fig, fig.add_subplot()


def _style(ax: Any, title: str) -> None:
    ax.set_title(title, loc="left", fontsize=12, fontweight="bold", color=_INK)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(colors=_INK, labelsize=9)
    ax.grid(axis="y", color="#E6E6E6", linewidth=0.8)
    ax.set_axisbelow(True)


def money(value: float, _pos: object = None) -> str:
    """A dollar amount (axis ticks) with precision that suits its size: $1,234, $12.50,
    $0.0042, and two significant digits below a hundredth of a cent ($0.000029)."""
    size = abs(value)
    if size >= 1000:
        return f"${value:,.0f}"
    if size >= 1 or size == 0:
        return f"${value:,.2f}"
    if size >= 0.01:
        return f"${value:,.3f}"
    if size >= 0.0001:
        return f"${value:,.4f}"
    digits = min(10, 1 - math.floor(math.log10(size)))
    return f"${value:,.{digits}f}"


def tokens(value: float, _pos: object = None) -> str:
    """A token count with a k/M/B suffix."""
    size = abs(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if size >= limit:
            return f"{value / limit:,.1f}{suffix}".replace(".0" + suffix, suffix)
    return f"{value:,.0f}"


def _formatter(fn: Any) -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(fn)


# Days in each period (a month counted as its shortest).
_PERIOD_DAYS = {"hour": 1 / 24, "day": 1.0, "week": 7.0, "month": 28.0}
_TICK_FORMATS = {"hour": "%H:%M\n%b %d", "day": "%b %d", "week": "%b %d", "month": "%b %Y"}
# Up to this many periods every one gets its own tick (labelled by its start).
_MAX_PERIOD_TICKS = 10


def _period_x(periods: Any) -> list[float]:
    """Period starts (a column or index of datetimes) as matplotlib date numbers; each
    period's bar or point is centred on its start, where its tick is."""
    import matplotlib.dates as mdates
    import pandas as pd

    starts = pd.DatetimeIndex(periods).to_pydatetime()
    return [float(v) for v in mdates.date2num(list(starts))]  # type: ignore[no-untyped-call]


def _stacked_bars(
    ax: Any, x: Sequence[float], layers: Sequence[tuple[str, list[float], str]], period: str
) -> list[float]:
    """One bar per period with a (label, values, colour) layer stacked on the one before,
    on a period axis; returns the bars' tops."""
    width = _PERIOD_DAYS.get(period, 1.0) * 0.8
    tops = [0.0] * len(x)
    for label, values, color in layers:
        ax.bar(x, values, width=width, bottom=tops, label=label, color=color)
        tops = [b + v for b, v in zip(tops, values, strict=True)]
    _period_axis(ax, x, period)
    return tops


def _period_axis(ax: Any, x: Sequence[float], period: str) -> None:
    """A date axis spanning the periods drawn, never wider or finer than they need.

    Without limits a single period leaves matplotlib to pick a range (years wide for one
    point, hours for one day's bar); so the axis runs from the first period to the last
    with a margin of about one period, and a few periods get one tick each.
    """
    import matplotlib.dates as mdates
    from matplotlib.ticker import FixedLocator

    margin = _PERIOD_DAYS.get(period, 1.0) * 0.6
    ax.xaxis_date()
    ax.set_xlim(min(x) - margin, max(x) + margin)
    distinct = sorted(set(x))
    if len(distinct) <= _MAX_PERIOD_TICKS:
        ax.xaxis.set_major_locator(FixedLocator(distinct))
        ax.xaxis.set_major_formatter(mdates.DateFormatter(_TICK_FORMATS.get(period, "%b %d")))  # type: ignore[no-untyped-call]
        return
    locator = mdates.AutoDateLocator(maxticks=8)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]


def _colors(labels: Sequence[str]) -> list[str]:
    out: list[str] = []
    for i, label in enumerate(labels):
        out.append(_OTHER if label == "other" else PALETTE[i % len(PALETTE)])
    return out


def _empty(ax: Any, message: str = "No calls in this range") -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", color="#888888", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def cost_over_time(
    source: Any = None,
    period: str = "day",
    *,
    by: str = "model",
    top: int = 6,
    tz: str = "UTC",
    since: TimeLike = None,
    until: TimeLike = None,
    ax: Any = None,
    **filters: Any,
) -> Any:
    """Spend per period as stacked bars, one colour per model (or ``by`` group); the
    ``top`` biggest groups are shown and the rest stacked as "other"."""
    frame = _analytics(source).over_time(
        period, by=by, tz=tz, since=since, until=until, top=top, **filters
    )
    fig, ax = _axes(ax, (10, 4.2))
    _style(ax, f"Spend per {period}, by {by.replace('_id', '')}")
    if frame.empty:
        _empty(ax)
        return fig
    wide = frame.pivot_table(index="period", columns=by, values="cost", aggfunc="sum", sort=False)
    order = list(dict.fromkeys(frame[by]))
    wide = wide[order]
    x = _period_x(wide.index)
    layers = [
        (label, wide[label].fillna(0).to_list(), color)
        for label, color in zip(order, _colors(order), strict=True)
    ]
    _stacked_bars(ax, x, layers, period)
    ax.yaxis.set_major_formatter(_formatter(money))
    ax.set_ylabel("Spend (USD)", color=_INK)
    ax.set_xlabel(f"{period.capitalize()} ({tz})", color=_INK)
    ax.legend(
        title=by.replace("_id", ""),
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        frameon=False,
        fontsize=9,
    )
    return fig


def cost_by_model(
    source: Any = None,
    *,
    top: int = 10,
    since: TimeLike = None,
    until: TimeLike = None,
    ax: Any = None,
    **filters: Any,
) -> Any:
    """Spend per model as horizontal bars, biggest on top, labelled with dollars and share."""
    frame = _analytics(source).by("model", since, until, top=top, **filters)
    return _hbar(frame, "model", "Spend by model", ax)


def usage_by_operation(
    source: Any = None,
    *,
    top: int = 10,
    since: TimeLike = None,
    until: TimeLike = None,
    ax: Any = None,
    **filters: Any,
) -> Any:
    """Tokens per operation split into cached input, uncached input and output, with each
    operation's spend written at the end of its bar."""
    frame = _analytics(source).by("operation", since, until, top=top, **filters)
    fig, ax = _axes(ax, (9, max(2.5, 0.5 * len(frame) + 1.5)))
    _style(ax, "Usage by operation")
    ax.grid(axis="y", visible=False)
    ax.grid(axis="x", color="#E6E6E6", linewidth=0.8)
    if frame.empty:
        _empty(ax)
        return fig
    frame = frame.iloc[::-1]
    labels = frame["operation"].to_list()
    cached = frame["cache_read_tokens"].astype(float)
    uncached = frame["input_tokens"].astype(float) - cached
    output = frame["output_tokens"].astype(float)
    parts = (
        ("Input (uncached)", uncached, PALETTE[0]),
        ("Input (cache read)", cached, PALETTE[4]),
        ("Output", output, PALETTE[1]),
    )
    left = [0.0] * len(frame)
    for name, values, color in parts:
        ax.barh(labels, values.to_list(), left=left, color=color, label=name, height=0.6)
        left = [a + b for a, b in zip(left, values.to_list(), strict=True)]
    for y, (total, spend) in enumerate(zip(left, frame["cost"].to_list(), strict=True)):
        ax.text(total, y, f"  {formatting.money(spend)}", va="center", fontsize=9, color=_INK)
    ax.xaxis.set_major_formatter(_formatter(tokens))
    ax.set_xlabel("Tokens", color=_INK)
    ax.set_xlim(0, max(left) * 1.18 if max(left) > 0 else 1)
    ax.legend(loc="lower right", frameon=False, fontsize=9)
    return fig


def token_mix(
    source: Any = None,
    period: str = "day",
    *,
    tz: str = "UTC",
    since: TimeLike = None,
    until: TimeLike = None,
    ax: Any = None,
    **filters: Any,
) -> Any:
    """Input (uncached and cache read) against output tokens per period, stacked bars."""
    frame = _analytics(source).over_time(period, tz=tz, since=since, until=until, **filters)
    fig, ax = _axes(ax, (10, 4.2))
    _style(ax, f"Tokens per {period}: input vs output vs cached")
    if frame.empty:
        _empty(ax)
        return fig
    x = _period_x(frame["period"])
    cached = frame["cache_read_tokens"].astype(float).to_list()
    uncached = (frame["input_tokens"].astype(float) - frame["cache_read_tokens"]).to_list()
    output = frame["output_tokens"].astype(float).to_list()
    layers = [
        ("Input (uncached)", uncached, PALETTE[0]),
        ("Input (cache read)", cached, PALETTE[4]),
        ("Output", output, PALETTE[1]),
    ]
    tops = _stacked_bars(ax, x, layers, period)
    ax.set_ylim(0, max(max(tops) * 1.25, 1.0))  # headroom: the legend sits top left
    ax.yaxis.set_major_formatter(_formatter(tokens))
    ax.set_ylabel("Tokens", color=_INK)
    ax.set_xlabel(f"{period.capitalize()} ({tz})", color=_INK)
    ax.legend(loc="upper left", frameon=False, fontsize=9)
    return fig


def cache_hit_rate(
    source: Any = None,
    period: str = "day",
    *,
    tz: str = "UTC",
    since: TimeLike = None,
    until: TimeLike = None,
    ax: Any = None,
    **filters: Any,
) -> Any:
    """Share of input tokens read from a prompt cache, per period (gaps where no input)."""
    frame = _analytics(source).over_time(period, tz=tz, since=since, until=until, **filters)
    fig, ax = _axes(ax, (10, 3.6))
    _style(ax, f"Prompt-cache hit rate per {period}")
    if frame.empty:
        _empty(ax)
        return fig
    inputs = frame["input_tokens"].astype(float)
    rate = (frame["cache_read_tokens"].astype(float) / inputs.where(inputs > 0)) * 100
    x = _period_x(frame["period"])
    ax.plot(x, rate, color=PALETTE[2], marker="o", markersize=5, linewidth=2, label=f"Per {period}")
    ax.fill_between(x, rate.fillna(0), color=PALETTE[2], alpha=0.12)
    total_in = inputs.sum()
    if total_in > 0:
        overall = frame["cache_read_tokens"].sum() / total_in * 100
        ax.axhline(
            overall,
            color="#888888",
            linestyle="--",
            linewidth=1,
            label=f"Whole range: {overall:.0f}%",
        )
        ax.legend(loc="upper right", frameon=False, fontsize=9)
    _period_axis(ax, x, period)
    ax.set_ylim(0, 100)
    ax.yaxis.set_major_formatter(_formatter(lambda v, _p: f"{v:.0f}%"))
    ax.set_ylabel("Cache read / input tokens", color=_INK)
    ax.set_xlabel(f"{period.capitalize()} ({tz})", color=_INK)
    return fig


def _hbar(frame: Any, column: str, title: str, ax: Any) -> Any:
    fig, ax = _axes(ax, (9, max(2.5, 0.45 * len(frame) + 1.5)))
    _style(ax, title)
    ax.grid(axis="y", visible=False)
    ax.grid(axis="x", color="#E6E6E6", linewidth=0.8)
    if frame.empty:
        _empty(ax)
        return fig
    frame = frame.iloc[::-1]
    labels = frame[column].to_list()
    values = frame["cost"].astype(float).to_list()
    colors = list(reversed(_colors(list(reversed(labels)))))
    ax.barh(labels, values, color=colors, height=0.6)
    for y, (value, share, unpriced) in enumerate(
        zip(values, frame["share"].to_list(), frame["unpriced_calls"].to_list(), strict=True)
    ):
        note = f"  {formatting.money(value)} ({share:.0%})"
        if unpriced:
            note += f" +{unpriced:,} unpriced"
        ax.text(value, y, note, va="center", fontsize=9, color=_INK)
    top = max(values) if values else 0
    ax.set_xlim(0, top * 1.35 if top > 0 else 1)
    ax.xaxis.set_major_formatter(_formatter(money))
    ax.set_xlabel("Spend (USD)", color=_INK)
    return fig
