"""``tokentrail html``: one self-contained HTML dashboard file.

Everything is inline — CSS, charts as SVG drawn by matplotlib — so the file opens anywhere
without a network: mail it, attach it to a ticket, open it from disk. Contents: KPI tiles
(spend, tokens, calls, cache savings, month-end forecast), spend over time by model, spend
by model, usage by operation, token mix, cache hit rate, top users and recent calls.

Example::

    from tokentrail import report_html
    report_html.write("report.html", "usage.duckdb", since="30d")
"""

from __future__ import annotations

import html
import io
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import display
from .analytics import Analytics
from .formatting import ESTIMATED_CAUSES
from .timeparse import TimeLike

__all__ = ["render", "write"]

# The look shared with the live dashboard of ``tokentrail serve``.
_PAGE_CSS = (Path(__file__).parent / "assets" / "look.css").read_text(encoding="utf-8")


def _svg(fig: Any) -> str:
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "tokentrail"}):
        fig.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    # Keep only the <svg> element: the XML prolog and DOCTYPE are not allowed mid-document.
    start = text.find("<svg")
    svg = text[start:] if start >= 0 else text
    return re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)


def _table(columns: list[tuple[str, bool]], rows: list[list[str]], row_classes: list[str]) -> str:
    head = "".join(
        f"<th class='{'num' if numeric else ''}'>{html.escape(name)}</th>"
        for name, numeric in columns
    )
    body = "".join(
        f"<tr class='{cls}'>"
        + "".join(
            f"<td class='{'num' if numeric else ''}'>{html.escape(cell)}</td>"
            for cell, (_name, numeric) in zip(row, columns, strict=True)
        )
        + "</tr>"
        for row, cls in zip(rows, row_classes, strict=True)
    )
    if not rows:
        body = f"<tr><td colspan='{len(columns)}' class='muted'>No calls in this range</td></tr>"
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _filters_html(since: TimeLike, until: TimeLike, filters: dict[str, Any]) -> str:
    """The filters the report was made with, as the dashboard shows them."""

    def chip(name: str, value: Any) -> str:
        shown = ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
        return f"<span class='chip'><b>{html.escape(name)}</b> {html.escape(shown)}</span>"

    if since is None and until is None:
        span = "all time"
    else:
        span = f"{since or 'the first call'} → {until or 'now'}"
    chips = [chip("range", span)]
    chips += [
        chip(name.removesuffix("_id"), value)
        for name, value in filters.items()
        if value not in (None, [], ())
    ]
    if len(chips) == 1:
        chips.append("<span class='muted'>all users, models and operations</span>")
    return "<div class='filters' id='filters'><span>Showing:</span>" + "".join(chips) + "</div>"


def render(
    source: Any = None,
    *,
    since: TimeLike = None,
    until: TimeLike = None,
    period: str = "day",
    tz: str = "UTC",
    title: str = "LLM usage report",
    recent: int = 25,
    now: datetime | None = None,
    **filters: Any,
) -> str:
    """The dashboard as one HTML string (a tracker, Analytics, path or ``None`` as source)."""
    from . import plots

    analytics = plots._analytics(source)
    fast = Analytics(analytics.path)  # one flush is enough: later queries skip before_query
    summary = analytics.summary(since, until, **filters).iloc[0].to_dict()
    forecast = fast.forecast(tz=tz, now=now, **filters).iloc[0].to_dict()
    users = fast.by("user_id", since, until, top=10, **filters)
    calls = fast.history(recent, since=since, until=until, **filters)

    tiles = display.summary_tiles(summary)[:4]
    tiles.append(
        (
            f"Forecast {forecast['month']}",
            display.money(forecast["projected"]),
            f"{display.money(forecast['run_rate_per_day'])}/day run rate",
        )
    )
    tiles_html = "".join(
        f"<div class='tile'><div class='label'>{html.escape(label)}</div>"
        f"<div class='value'>{html.escape(value)}</div>"
        f"<div class='note'>{html.escape(note)}</div></div>"
        for label, value, note in tiles
    )

    charts = [
        ("Spend over time", plots.cost_over_time(fast, period, tz=tz, since=since, until=until, **filters)),
        ("Spend by model", plots.cost_by_model(fast, since=since, until=until, **filters)),
        ("Usage by operation", plots.usage_by_operation(fast, since=since, until=until, **filters)),
        ("Tokens: input, cached, output", plots.token_mix(fast, period, tz=tz, since=since, until=until, **filters)),
        ("Prompt-cache hit rate", plots.cache_hit_rate(fast, period, tz=tz, since=since, until=until, **filters)),
    ]  # fmt: skip
    chart_cards = "".join(
        f"<section class='card chart{' wide' if i == 0 else ''}' data-chart='{html.escape(name)}'"
        f" aria-label='{html.escape(name)}'>{_svg(fig)}</section>"
        for i, (name, fig) in enumerate(charts)
    )

    user_rows = [
        [
            str(r["user_id"]),
            display.count(r["calls"]),
            _marked(r["estimated_calls"]) + display.count(r["total_tokens"]),
            display.money(r["cost"]),
            display.percent(r["share"]),
        ]
        for r in users.to_dict("records")
    ]
    users_html = _table(
        [("User", False), ("Calls", True), ("Tokens", True), ("Spend", True), ("Share", True)],
        user_rows,
        [""] * len(user_rows),
    )
    call_rows = [
        [
            r["ts"].strftime("%Y-%m-%d %H:%M:%S"),
            str(r["model"] or "—"),
            str(r["user_id"] or "—"),
            str(r["operation"] or "—"),
            _marked(r.get("estimated")) + display.count(r["input_tokens"]),
            _marked(r.get("estimated")) + display.count(r["output_tokens"]),
            display.count(r["cache_read_tokens"]),
            display.money(r["total_cost"]),
            _latency(r["latency_ms"]),
            str(r["status"]),
        ]
        for r in calls.to_dict("records")
    ]
    calls_html = _table(
        [
            ("Time (UTC)", False),
            ("Model", False),
            ("User", False),
            ("Operation", False),
            ("Input", True),
            ("Output", True),
            ("Cached", True),
            ("Cost", True),
            ("Latency", True),
            ("Status", False),
        ],
        call_rows,
        ["error" if r[-1] == "error" else "" for r in call_rows],
    )

    generated = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    first, last = summary.get("first_call"), summary.get("last_call")
    span = (
        f"{first:%Y-%m-%d} → {last:%Y-%m-%d}"
        if first is not None and first == first and last is not None
        else "no calls yet"
    )
    where = html.escape(str(getattr(analytics, "path", "") or "default database"))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{_PAGE_CSS}</style></head>
<body>
<header><h1>{html.escape(title)}</h1>
<p>{html.escape(span)} · {display.count(summary["calls"])} calls · generated {generated} ·
<span class="db">{where}</span></p>
{_filters_html(since, until, filters)}</header>
<main>
<section class="tiles" id="kpis">{tiles_html}</section>
<div class="grid">{chart_cards}</div>
<section class="card" id="top-users"><h2>Top users</h2>{users_html}</section>
<section class="card" id="recent-calls"><h2>Recent calls</h2>{calls_html}</section>
<footer>Forecast method: {html.escape(str(forecast["method"]))}.
Money in USD; {display.count(summary["unpriced_calls"])} calls with an unknown price are
counted but not priced.{_estimated_note(summary)} Made by tokentrail.</footer>
</main></body></html>
"""


def write(
    out: str | os.PathLike[str],
    source: Any = None,
    **kwargs: Any,
) -> Path:
    """Render the dashboard and write it to ``out``; returns the path."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(source, **kwargs), encoding="utf-8")
    return path


def _marked(estimated: object) -> str:
    """ "~" before a token figure that includes estimated counts."""
    return "~" if estimated and estimated == estimated else ""


def _estimated_note(summary: dict[str, Any]) -> str:
    share = summary.get("estimated_share")
    if not share or share != share:
        return ""
    return (
        f" ~ marks estimated token counts ({display.percent(share)} of calls): {ESTIMATED_CAUSES}."
    )


def _latency(value: object) -> str:
    """``1,234 ms``; ``—`` for a call without one (None or NaN: a plain ``record()``)."""
    if value is None or value != value or not isinstance(value, (int, float)):
        return "—"
    return f"{value:,.0f} ms"
