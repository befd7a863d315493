"""Data commands: ``export``, ``forget``, ``prune``, ``path``, ``status``.

Exit codes: 0 success, 1 the database cannot be used (corrupt, newer schema, locked,
no permission; the message says which), 2 bad arguments.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..store.paths import Database
from ._common import database, echo_json, store_action, time_bounds

__all__ = ["export", "forget", "path", "prune", "status"]


def _human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


@click.command("path")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def path(ctx: click.Context, as_json: bool) -> None:
    """Print the database location (set it with --db or TOKENTRAIL_DB)."""
    db = database(ctx)
    if as_json:
        echo_json({"path": str(db), "exists": db.exists()})
    else:
        click.echo(str(db))


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Rows, size, spool backlog and schema version of the database."""
    from ..store.housekeeping import maintenance_for

    db = database(ctx)
    info = store_action(lambda: maintenance_for(db).status(db))
    if as_json:
        echo_json(info)
        return
    spool = info["spool"]
    lines = [f"database        {info['path']}"]
    if not info["exists"]:
        lines.append("                (not created yet: it appears with the first recorded call)")
    else:
        lines += [
            f"size            {_human_size(info['size_bytes'])}",
            f"rows            {info['rows']:,}",
            f"users           {info['users']:,}",
            f"first call      {info['first_call'] or '-'}",
            f"last call       {info['last_call'] or '-'}",
            f"schema version  {info['schema_version']} (this tokentrail: "
            f"{info['supported_schema_version']})",
        ]
    lines.append(
        f"spool backlog   {spool['records']:,} records in {spool['segments']} segments"
        + (f" ({', '.join(spool['directories'])})" if spool["directories"] else "")
    )
    click.echo("\n".join(lines))


@click.command("export")
@click.option("--user", "user", default=None, help="Only this user's rows.")
@click.option(
    "--since", default=None, help='Only calls since then: "30d", "this-month", "2026-11-01"...'
)
@click.option("--until", default=None, help="Only calls before then (same forms as --since).")
@click.option("--model", "models", multiple=True, help="Only this model (repeat for several).")
@click.option("--operation", "operations", multiple=True, help="Only this operation.")
@click.option("--tag", "tags", multiple=True, help="Only calls with this tag.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "parquet", "jsonl"]),
    default="csv",
    show_default=True,
    help="Output format.",
)
@click.option(
    "-o",
    "--output",
    "output",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="File to write (default: standard output).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary (needs -o).")
@click.pass_context
def export(
    ctx: click.Context,
    user: str | None,
    since: str | None,
    until: str | None,
    models: tuple[str, ...],
    operations: tuple[str, ...],
    tags: tuple[str, ...],
    fmt: str,
    output: str | None,
    as_json: bool,
) -> None:
    """Export rows of the usage table as CSV, Parquet or JSON lines."""
    from ..store.housekeeping import maintenance_for

    db = database(ctx)
    store_export = maintenance_for(db).export
    bounds = time_bounds(since, until)
    filters = {"model": list(models), "operation": list(operations), "tag": list(tags)}
    selection: dict[str, Any] = {"user": user, "filters": filters, **bounds}
    if output is None and as_json:
        raise click.UsageError("--json prints a summary; give the data a file with -o FILE")
    if output is None and fmt == "parquet" and sys.stdout.isatty():
        raise click.UsageError(
            "Parquet is binary and would garble the terminal: write it to a file with "
            "-o usage.parquet (or pipe the output into another program)"
        )
    if output is not None:
        count = store_action(lambda: store_export(db, output, fmt=fmt, **selection))
        if as_json:
            echo_json({"path": str(Path(output)), "rows": count, "format": fmt})
        else:
            click.echo(f"exported {count:,} rows to {output}", err=True)
        return
    # To standard output: stage in a temporary file, then stream it.
    with tempfile.TemporaryDirectory(prefix="tokentrail-export-") as tmp:
        staging = os.path.join(tmp, f"export.{fmt}")
        store_action(lambda: store_export(db, staging, fmt=fmt, **selection))
        out: Any = sys.stdout.buffer
        with open(staging, "rb") as fh:
            while chunk := fh.read(1 << 16):
                out.write(chunk)
        out.flush()


def at_terminal() -> bool:
    """Whether a person is at a terminal (standard input and output both are one)."""
    return sys.stdin.isatty() and sys.stdout.isatty()


def _confirm(question: str, yes: bool) -> None:
    """Ask before deleting (``--yes`` skips the question); a "no" deletes nothing."""
    if yes:
        return
    if not click.confirm(question, default=False, err=True):
        raise click.ClickException("nothing deleted")


def _deleting(
    ctx: click.Context,
    count_rows: Callable[[Database, bool], int],
    what: str,
    dry_run: bool,
    yes: bool,
    as_json: bool,
    extra: dict[str, Any],
) -> None:
    """Count the rows, ask, delete, and say how many rows went from which database."""
    from ..store.housekeeping import maintenance_for

    db = database(ctx)
    if dry_run:
        would = store_action(lambda: count_rows(db, True))
        data = {**extra, "would_delete": would, "files": {str(db): would}, "dry_run": True}
        _done(as_json, data, f"would delete {would:,} rows {what} from {db}")
        return
    if not yes and at_terminal():
        would = store_action(lambda: count_rows(db, True))
        if would:
            _confirm(f"Delete {would:,} rows {what} from {db}?", yes)
    count = store_action(lambda: count_rows(db, False))
    data = {**extra, "deleted": count, "files": {str(db): count}, "rewritten": count > 0}
    note = f" ({maintenance_for(db).ERASURE_NOTE})" if count else ""
    _done(as_json, data, f"deleted {count:,} rows {what} from {db}{note}")


@click.command("forget")
@click.option("--user", "user", required=True, help="The user whose rows are deleted.")
@click.option("--dry-run", is_flag=True, help="Say how many rows would go; delete nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before deleting.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def forget(ctx: click.Context, user: str, dry_run: bool, yes: bool, as_json: bool) -> None:
    """Delete every row of one user (right to erasure); a DuckDB file is rewritten so no
    bytes of them are left (PostgreSQL: VACUUM). Asks first in a terminal (--yes to skip;
    --dry-run to count)."""
    from ..store.housekeeping import maintenance_for

    _deleting(
        ctx,
        lambda db, dry: maintenance_for(db).forget(db, user, dry_run=dry),
        f"of user {user!r}",
        dry_run,
        yes,
        as_json,
        {"user": user},
    )


@click.command("prune")
@click.option(
    "--older-than",
    "older_than",
    required=True,
    help="Delete calls older than this: 365d, 30d, 12h, 2w, 1y.",
)
@click.option("--dry-run", is_flag=True, help="Say how many rows would go; delete nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before deleting.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def prune(ctx: click.Context, older_than: str, dry_run: bool, yes: bool, as_json: bool) -> None:
    """Delete rows older than a retention period (asks first in a terminal)."""
    from ..store.housekeeping import maintenance_for
    from ..store.maintenance import parse_duration

    try:
        delta = parse_duration(older_than)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--older-than") from None
    _deleting(
        ctx,
        lambda db, dry: maintenance_for(db).prune(db, delta, dry_run=dry),
        f"older than {older_than}",
        dry_run,
        yes,
        as_json,
        {"older_than": older_than},
    )


def _done(as_json: bool, data: dict[str, Any], message: str) -> None:
    if as_json:
        echo_json(data)
    else:
        click.echo(message)
