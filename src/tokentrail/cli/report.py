"""``tokentrail report``, ``top``, ``history`` and ``html``: usage in the terminal.

Tables are plain aligned text with thousands separators and dollars, so they work on any
terminal and without the notebook extra; ``--json`` and ``--csv`` give machine output.
These commands read the database only (pandas is needed for ``html`` alone).
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

from ..analytics import queries
from ..analytics.result import Result
from ..display import count, money, percent
from ..formatting import ESTIMATED_CAUSES, money_digits
from ..store.paths import Database
from ..timeparse import get_zone
from ._common import database, echo_json, existing_db

__all__ = ["format_table", "history", "html", "print_report", "report", "top"]

_FILTER_OPTIONS: tuple[tuple[str, str, str], ...] = (
    ("--user", "user_id", "Only this user (repeat for several)."),
    ("--session", "session_id", "Only this session."),
    ("--operation", "operation", "Only this operation."),
    ("--model", "model", "Only this model (as reported, or the catalog model it priced as)."),
    ("--provider", "provider", "Only this provider."),
    ("--tag", "tag", "Only calls with this tag."),
)

_MONEY = {"cost", "total_cost", "avg_cost_per_call", "cache_savings"}
_PERCENT = {"share", "error_rate", "cache_hit_rate"}
_TEXT = {
    "model",
    "provider",
    "user_id",
    "session_id",
    "operation",
    "tag",
    "framework",
    "status",
    "priced_model",
    "model_version",
}


def _filters(func: Callable[..., Any]) -> Callable[..., Any]:
    for flag, dest, help_text in reversed(_FILTER_OPTIONS):
        func = click.option(flag, dest, multiple=True, help=help_text)(func)
    func = click.option("--until", default=None, help="End (exclusive), same forms as --since.")(
        func
    )
    func = click.option(
        "--since",
        default=None,
        help='Start: "7d", "24h", "this-month", "2026-11-01", an ISO datetime.',
    )(func)
    return func


def _filter_values(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {dest: list(kwargs.pop(dest)) or None for _flag, dest, _h in _FILTER_OPTIONS}


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[bool]
) -> str:
    """Rows of text as an aligned table: numbers right-aligned, a rule under the header."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(w) if num else cell.ljust(w)
            for cell, w, num in zip(cells, widths, numeric, strict=True)
        ).rstrip()

    rule = click.style("  ".join("─" * w for w in widths), dim=True)
    # click.echo drops the styles when the output is not a terminal.
    return "\n".join([click.style(line(headers), bold=True), rule, *(line(r) for r in rows)])


def _cell(column: str, value: Any, digits: int | None = None) -> str:
    if value is None:
        return "—"
    if column in _MONEY:
        return money(value, digits)
    if column in _PERCENT:
        return percent(value)
    if column in ("period", "ts") and hasattr(value, "strftime"):
        midnight = column == "period" and (value.hour, value.minute) == (0, 0)
        return str(value.strftime("%Y-%m-%d" if midnight else "%Y-%m-%d %H:%M"))
    if column == "latency_ms":
        return "—" if value != value else f"{value:,.0f} ms"
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, int):
        return count(value)
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def _titles(columns: Sequence[str]) -> list[str]:
    names = {
        "user_id": "user",
        "session_id": "session",
        "total_tokens": "tokens",
        "input_tokens": "input",
        "output_tokens": "output",
        "cache_read_tokens": "cached",
        "reasoning_tokens": "reasoning",
        "total_cost": "cost",
        "unpriced_calls": "unpriced",
        "latency_ms": "latency",
    }
    return [names.get(c, c) for c in columns]


#: Marks token figures that include estimated counts (see ESTIMATED_NOTE).
ESTIMATED_MARK = "~"
ESTIMATED_NOTE = f"{ESTIMATED_MARK} includes estimated token counts: {ESTIMATED_CAUSES}."
_TOKEN_COLUMNS = {"total_tokens", "input_tokens", "output_tokens"}


def _row_cell(column: str, row: Any, digits: int | None) -> str:
    # A group whose calls all have an unknown price has no cost: "—", never a guessed $0.
    if column == "cost" and row.get("calls") and row.get("unpriced_calls") == row["calls"]:
        return "—"
    if column in _TOKEN_COLUMNS and row.get("estimated_calls"):
        return ESTIMATED_MARK + _cell(column, row[column], digits)
    return _cell(column, row[column], digits)


def _estimated(result: Result) -> bool:
    return "estimated_calls" in result.columns and any(r["estimated_calls"] for r in result)


def render_result(result: Result, columns: Sequence[str]) -> str:
    """Some columns of a result as an aligned table (one precision per money column)."""
    records = list(result)
    digits = {c: money_digits(r[c] for r in records) for c in columns if c in _MONEY}
    rows = [[_row_cell(c, r, digits.get(c)) for c in columns] for r in records]
    numeric = [c not in _TEXT and c not in ("period", "ts", "tags") for c in columns]
    return format_table(_titles(columns), rows, numeric)


def _emit(result: Result, columns: Sequence[str], as_json: bool, as_csv: bool) -> None:
    if as_json:
        echo_json(result.to_json_records())
    elif as_csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(result.columns)
        for record in result.to_json_records():
            writer.writerow(["" if v is None else v for v in record.values()])
    else:
        click.echo(render_result(result, columns))
        if _TOKEN_COLUMNS.intersection(columns) and _estimated(result):
            click.echo(ESTIMATED_NOTE)


def _run(ctx: click.Context, fn: Callable[[Any], Any]) -> Any:
    """Run ``fn(connection)``; bad arguments exit 2, an unreadable database exits 1."""
    from ..analytics.connection import connect

    path = existing_db(ctx)
    try:
        with connect(path) as con:
            return fn(con)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    except BrokenPipeError:  # output piped into `head`: not a database problem
        raise
    except Exception as exc:  # one line (JSON with --json), exit 1: see cli.main
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise click.ClickException(f"could not read {path}: {first}") from None


def _nothing_yet(con: Any, path: Database) -> None:
    """Say why a table is empty: nothing recorded at all, or nothing in this selection."""
    everything = queries.summary(con).first()
    if everything["calls"]:
        span = f"{everything['first_call']:%Y-%m-%d} → {everything['last_call']:%Y-%m-%d}"
        click.echo(
            f"No calls match this selection; {path} holds {count(everything['calls'])} "
            f"calls from {span} UTC. Widen --since/--until or drop a filter."
        )
        return
    click.echo(
        f"No calls recorded in {path} yet.\n"
        "Try `tokentrail demo` for an example, or attach tracker.langchain() / "
        "tracker.llamaindex() to your app."
    )


_TAG_NOTE = "A call with several tags counts under each of them: shares add up to more than 100%."


def print_report(
    con: Any, path: Database, since: str | None = None, until: str | None = None, **filters: Any
) -> None:
    """The default report: totals, forecast, spend by model and by operation."""
    s = queries.summary(con, since, until, **filters).first()
    if not s["calls"]:
        _nothing_yet(con, path)
        return
    f = queries.forecast(con, **filters).first()
    span = f"{s['first_call']:%Y-%m-%d %H:%M} → {s['last_call']:%Y-%m-%d %H:%M} UTC"
    unpriced = f" (+{count(s['unpriced_calls'])} calls unpriced)" if s["unpriced_calls"] else ""
    estimated = (
        f", {ESTIMATED_MARK}{percent(s['estimated_share'])} of calls estimated"
        if s["estimated_share"]
        else ""
    )
    lines = [
        f"tokentrail report — {path}",
        f"  {span}",
        "",
        f"  Spend          {money(s['cost'])}{unpriced}",
        f"  Calls          {count(s['calls'])}  ({percent(s['error_rate'])} errors)",
        f"  Tokens         {count(s['total_tokens'])}  "
        f"({count(s['input_tokens'])} in / {count(s['output_tokens'])} out{estimated})",
        f"  Cache          {percent(s['cache_hit_rate'])} of input read from cache, "
        f"saved {money(s['cache_savings'])}",
        f"  Forecast       {money(f['projected'])} by the end of {f['month']} "
        f"({money(f['run_rate_per_day'])}/day)",
        "",
    ]
    click.echo("\n".join(lines))
    columns = ["calls", "total_tokens", "cost", "share"]
    for dim in ("model", "operation"):
        table = queries.by(con, dim, since, until, top=8, **filters)
        click.echo(render_result(table, [dim, *columns]))
        if dim == "model":
            _echo_versions(queries.model_versions(con, since, until, **filters))
        click.echo("")
    if s["estimated_share"]:
        click.echo(ESTIMATED_NOTE)


def _echo_versions(versions: Result) -> None:
    """One level down: the names each model was reported under (--by model_version)."""
    names: dict[str, list[str]] = {}
    for r in versions:
        names.setdefault(r["model"], []).append(f"{r['model_version']} ({count(r['calls'])})")
    for model, reported in names.items():
        click.echo(f"  {model} was reported as: {', '.join(reported)}")


@click.command()
@_filters
@click.option(
    "--by",
    "by",
    default=None,
    help="Group by model (the catalog's model), model_version (the name as reported), "
    "provider, user, session, operation, tag, framework or status.",
)
@click.option(
    "--period",
    default=None,
    type=click.Choice(["hour", "day", "week", "month"]),
    help="Totals per period instead.",
)
@click.option("--tz", default="UTC", show_default=True, help="Time zone for --period.")
@click.option(
    "--top",
    "top_n",
    default=None,
    type=int,
    help="With --by: keep the N biggest, the rest as 'other'.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")
@click.pass_context
def report(ctx: click.Context, /, by: str | None, period: str | None, tz: str, top_n: int | None, as_json: bool, as_csv: bool, **kwargs: Any) -> None:  # fmt: skip
    """Spend and tokens: overall, by a dimension (--by) or per period (--period)."""
    filters = _filter_values(kwargs)
    since, until = kwargs["since"], kwargs["until"]
    path = database(ctx)

    def go(con: Any) -> None:
        get_zone(tz)  # an unknown zone is a usage error even where --tz is not used
        if period is not None:
            result = queries.over_time(con, period, by, since, until, tz=tz, top=top_n, **filters)
            dim = [result.columns[1]] if by else []
            _emit(result, ["period", *dim, "calls", "total_tokens", "cost"], as_json, as_csv)
        elif by is not None:
            result = queries.by(con, by, since, until, top=top_n, **filters)
            cols = [result.columns[0], "calls", "input_tokens", "output_tokens"]
            cols += ["cache_read_tokens", "cost", "unpriced_calls", "share"]
            _emit(result, cols, as_json, as_csv)
            if result.columns[0] == "tag" and not (as_json or as_csv):
                click.echo(_TAG_NOTE)
        elif as_json or as_csv:
            _emit(queries.summary(con, since, until, **filters), [], as_json, as_csv)
        else:
            print_report(con, path, since, until=until, **filters)

    _run(ctx, go)


@click.command()
@_filters
@click.option(
    "--by", "by", default="user", show_default=True, help="user, model, operation, tag, session..."
)
@click.option("-n", "--limit", default=10, show_default=True, help="How many to show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def top(ctx: click.Context, /, by: str, limit: int, as_json: bool, **kwargs: Any) -> None:  # fmt: skip
    """The biggest spenders by user, model or operation."""
    filters = _filter_values(kwargs)

    def go(con: Any) -> None:
        result = queries.by(con, by, kwargs["since"], kwargs["until"], **filters)
        result.rows = result.rows[:limit]
        if not result.rows and not as_json:
            _nothing_yet(con, database(ctx))
            return
        _emit(result, [result.columns[0], "calls", "total_tokens", "cost", "share"], as_json, False)
        if result.columns[0] == "tag" and not as_json:
            click.echo(_TAG_NOTE)

    _run(ctx, go)


@click.command()
@_filters
@click.option("-n", "--limit", default=20, show_default=True, help="How many calls.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")
@click.pass_context
def history(ctx: click.Context, /, limit: int, as_json: bool, as_csv: bool, **kwargs: Any) -> None:  # fmt: skip
    """Recent calls, newest first."""
    filters = _filter_values(kwargs)

    def go(con: Any) -> None:
        result = queries.history(con, limit, kwargs["since"], kwargs["until"], **filters)
        if not result.rows and not (as_json or as_csv):
            _nothing_yet(con, database(ctx))
            return
        cols = ["ts", "model", "user_id", "operation", "input_tokens", "output_tokens"]
        cols += ["cache_read_tokens", "total_cost", "latency_ms", "status"]
        _emit(result, cols, as_json, as_csv)

    _run(ctx, go)


@click.command()
@_filters
@click.option(
    "-o",
    "--output",
    default="tokentrail-report.html",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="File to write.",
)
@click.option(
    "--period",
    default="day",
    type=click.Choice(["hour", "day", "week", "month"]),
    show_default=True,
    help="Chart period.",
)
@click.option("--tz", default="UTC", show_default=True, help="Time zone of the charts.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def html(ctx: click.Context, /, output: str, period: str, tz: str, as_json: bool, **kwargs: Any) -> None:  # fmt: skip
    """Write a self-contained HTML dashboard (opens offline, no scripts)."""
    try:
        import matplotlib  # noqa: F401
        import pandas  # noqa: F401
    except ImportError:
        click.echo(
            "Error: the HTML report draws charts with pandas and matplotlib.\n"
            "Install them with: pip install 'tokentrail[notebook]'",
            err=True,
        )
        ctx.exit(1)
    from .. import report_html

    filters = _filter_values(kwargs)
    path = existing_db(ctx)
    try:
        written = report_html.write(
            output,
            path,
            since=kwargs["since"],
            until=kwargs["until"],
            period=period,
            tz=tz,
            **filters,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if as_json:
        echo_json({"output": str(written.resolve()), "database": str(path)})
    else:
        click.echo(f"Wrote {written.resolve()} — open it in a browser.")
