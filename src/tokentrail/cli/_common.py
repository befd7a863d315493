"""Helpers shared by the sub-commands: the database option and JSON output."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import click

from ..errors import StoreError
from ..store.paths import Database

T = TypeVar("T")

__all__ = ["database", "db_path", "echo_json", "existing_db", "store_action", "time_bounds"]


def database(ctx: click.Context) -> Database:
    """The database the command works on (``--db``, ``TOKENTRAIL_DB`` or the default): a
    DuckDB file or a PostgreSQL URL."""
    from ..store.paths import resolve_db

    root = ctx.find_root()
    db = (root.obj or {}).get("db") if root.obj is not None else None
    return resolve_db(db)


def db_path(ctx: click.Context) -> Path:
    """The DuckDB file the command works on, for commands that handle files only; a
    PostgreSQL URL is refused with a message that says so."""
    db = database(ctx)
    if isinstance(db, Path):
        return db
    raise click.ClickException(
        f"`{ctx.command_path}` works on a DuckDB file, not yet on a PostgreSQL database "
        f"({db}); the reports (report, top, history, html) read PostgreSQL"
    )


def existing_db(ctx: click.Context) -> Database:
    """The database to read, which must exist: reading commands never create one.

    A database named with ``--db`` or ``TOKENTRAIL_DB`` that is not there is an error (a
    typo must not show an empty report as if nothing had been spent); the default one not
    there yet only means nothing was recorded, which is said, with what to do. A
    PostgreSQL URL always exists (an unreachable server is reported when it is read).
    """
    path = database(ctx)
    if path.exists():
        return path
    root = ctx.find_root()
    source = root.get_parameter_source("db")
    if source in (click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.ENVIRONMENT):
        raise click.ClickException(
            f"no tokentrail database at {path}. Check the path (`tokentrail path` prints the "
            "default) or pass another with --db."
        )
    click.echo(
        f"No calls recorded yet: there is no database at {path}.\n"
        "Try `tokentrail demo` for an example, or attach tracker.langchain() / "
        "tracker.llamaindex() to your app."
    )
    ctx.exit(0)


def store_action(action: Callable[[], T]) -> T:
    """Run a store action; a StoreError becomes a one-line error and exit code 1 (as JSON
    with ``--json``, see ``cli.main``)."""
    try:
        return action()
    except StoreError as exc:
        raise click.ClickException(str(exc).splitlines()[0]) from None


def time_bounds(since: str | None, until: str | None) -> dict[str, Any]:
    """``{"since": ..., "until": ...}`` from the ``--since``/``--until`` options (the ones
    given); a time that cannot be read is a usage error naming its option."""
    from ..timeparse import parse_time

    bounds: dict[str, Any] = {}
    for flag, value in (("--since", since), ("--until", until)):
        if value is not None:
            try:
                bounds[flag[2:]] = parse_time(value)
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint=flag) from None
    return bounds


def plain_decimal(value: Decimal) -> str:
    """A Decimal in plain notation with every significant digit: ``0`` not ``0E-7``."""
    return format(value.normalize(), "f") if value.is_finite() else str(value)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return plain_decimal(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return str(value)


def echo_json(data: Any) -> None:
    """Print ``data`` as indented JSON (Decimals as strings, datetimes as ISO 8601)."""
    click.echo(json.dumps(data, default=_default, indent=2, ensure_ascii=False))
