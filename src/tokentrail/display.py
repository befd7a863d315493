"""Rich displays for notebooks (``_repr_html_``) and the number formats shared with the CLI.

* :func:`tracker_html` — what a :class:`~tokentrail.Tracker` shows in Jupyter: database,
  defaults, totals, spend this month and budgets.
* :class:`SummaryView` — a summary as KPI tiles; ``tracker.analytics.summary()`` stays a
  DataFrame, wrap it (``SummaryView(df)``) or call :func:`summary_view` for the tiles.
* ``money``, ``count``, ``percent`` — formats used by tables, tiles and charts.

Nothing here imports pandas or matplotlib at module level.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .formatting import count, money, percent

if TYPE_CHECKING:
    from .protocols import TrackerView

__all__ = [
    "SummaryView",
    "count",
    "html_table",
    "money",
    "percent",
    "summary_view",
    "tracker_html",
]

logger = logging.getLogger("tokentrail")

_CSS = (
    "font-family:-apple-system,BlinkMacSystemFont,Segoe UI,Roboto,sans-serif;"
    "font-size:13px;color:#222"
)


def html_table(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    numeric: Sequence[bool] | None = None,
    caption: str | None = None,
) -> str:
    """An HTML table of already formatted cells (escaped here); numeric columns right-aligned."""
    numeric = numeric or [False] * len(columns)
    head = "".join(
        f"<th style='text-align:{'right' if n else 'left'};padding:4px 10px;"
        f"border-bottom:2px solid #ddd'>{html.escape(str(c))}</th>"
        for c, n in zip(columns, numeric, strict=True)
    )
    body = []
    for row in rows:
        cells = "".join(
            f"<td style='text-align:{'right' if n else 'left'};padding:3px 10px;"
            f"border-bottom:1px solid #eee'>{html.escape(str(v))}</td>"
            for v, n in zip(row, numeric, strict=True)
        )
        body.append(f"<tr>{cells}</tr>")
    cap = (
        f"<caption style='text-align:left;font-weight:600;padding:4px 0'>"
        f"{html.escape(caption)}</caption>"
        if caption
        else ""
    )
    return (
        f"<table style='border-collapse:collapse;{_CSS}'>{cap}"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def tiles_html(tiles: Sequence[tuple[str, str, str]]) -> str:
    """KPI tiles: (label, value, note) each."""
    cells = "".join(
        "<div style='border:1px solid #e3e3e3;border-radius:8px;padding:10px 14px;"
        "min-width:130px;background:#fafafa'>"
        f"<div style='font-size:11px;color:#666;text-transform:uppercase;letter-spacing:.04em'>"
        f"{html.escape(label)}</div>"
        f"<div style='font-size:20px;font-weight:600;margin-top:2px'>{html.escape(value)}</div>"
        f"<div style='font-size:11px;color:#777'>{html.escape(note)}</div></div>"
        for label, value, note in tiles
    )
    return f"<div style='display:flex;flex-wrap:wrap;gap:10px;{_CSS}'>{cells}</div>"


def summary_tiles(row: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """The KPI tiles of one summary row (a dict from ``analytics`` summary)."""
    unpriced = int(row.get("unpriced_calls") or 0)
    return [
        ("Spend", money(row.get("cost")), f"{count(unpriced)} unpriced" if unpriced else "USD"),
        (
            "Tokens",
            count(row.get("total_tokens")),
            f"{count(row.get('input_tokens'))} in / {count(row.get('output_tokens'))} out",
        ),
        ("Calls", count(row.get("calls")), f"{percent(row.get('error_rate'))} errors"),
        (
            "Cache savings",
            money(row.get("cache_savings")),
            f"hit rate {percent(row.get('cache_hit_rate'))}",
        ),
        ("Reasoning", percent(row.get("reasoning_share")), "of output tokens"),
    ]


class SummaryView:
    """A summary (one-row DataFrame, dict or ``Result``) shown as KPI tiles in notebooks."""

    def __init__(self, summary: Any) -> None:
        if hasattr(summary, "to_dict") and hasattr(summary, "iloc"):  # a DataFrame
            row = summary.iloc[0].to_dict() if len(summary) else {}
        elif hasattr(summary, "first"):  # an analytics Result
            row = summary.first()
        else:
            row = dict(summary)
        self.row: dict[str, Any] = row

    def __repr__(self) -> str:
        return "\n".join(f"{label:>14}: {value}  ({note})" for label, value, note in self.tiles())

    def tiles(self) -> list[tuple[str, str, str]]:
        """(label, value, note) for each tile."""
        return summary_tiles(self.row)

    def _repr_html_(self) -> str:
        return tiles_html(self.tiles())


def summary_view(source: Any = None, **kwargs: Any) -> SummaryView:
    """KPI tiles of ``analytics.summary(**kwargs)`` for a tracker, Analytics or path."""
    from .plots import _analytics

    return SummaryView(_analytics(source).summary(**kwargs))


def tracker_html(tracker: TrackerView) -> str:
    """The notebook display of a tracker. Never raises: a failing query shows as a note."""
    d = tracker.defaults
    defaults = [
        (k, v)
        for k, v in (
            ("user_id", d.user_id),
            ("session_id", d.session_id),
            ("operation", d.operation),
            ("tags", ", ".join(d.tags) if d.tags else None),
        )
        if v
    ]
    parts = [
        f"<div style='{_CSS}'><b>tokentrail Tracker</b> · "
        f"<code>{html.escape(str(tracker.path))}</code></div>"
    ]
    if defaults:
        parts.append(html_table(["default", "value"], defaults, caption="Attribution defaults"))
    try:
        from .analytics import queries
        from .analytics.connection import connect

        tracker.flush(5.0)
        with connect(tracker.path) as con:
            total = queries.summary(con).first()
            month = queries.summary(con, since="this-month").first()
        tiles = summary_tiles(total)
        tiles.insert(
            1, ("This month", money(month.get("cost")), f"{count(month.get('calls'))} calls")
        )
        parts.append(tiles_html(tiles))
    except Exception as exc:  # a display must never break the notebook
        logger.debug("tokentrail: tracker display query failed", exc_info=True)
        parts.append(
            f"<div style='{_CSS};color:#a00'>usage not readable: {html.escape(str(exc))}</div>"
        )
    try:
        statuses = tracker.budget_status()
    except Exception:
        statuses = []
    if statuses:
        parts.append(_budget_table(statuses))
    return "<div style='display:flex;flex-direction:column;gap:8px'>" + "".join(parts) + "</div>"


def budget_rows(statuses: Sequence[Any]) -> list[tuple[str, str, str, str, str, str]]:
    """(budget, window, spent, reserved, limit, used) cells for ``BudgetStatus`` objects."""
    rows = []
    for s in statuses:
        tokens_unit = getattr(s, "unit", "usd") == "tokens"
        fmt = count if tokens_unit else money
        who = s.scope if getattr(s, "key", None) is None else f"{s.scope} {s.key}"
        rows.append(
            (
                str(getattr(s, "name", None) or who),
                str(s.window),
                fmt(s.spent),
                fmt(s.reserved),
                fmt(s.limit),
                percent(s.percent / 100, 0),
            )
        )
    return rows


def _budget_table(statuses: Sequence[Any]) -> str:
    return html_table(
        ["budget", "window", "spent", "reserved", "limit", "used"],
        budget_rows(statuses),
        numeric=[False, False, True, True, True, True],
        caption="Budgets",
    )
