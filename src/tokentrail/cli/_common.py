"""Helpers shared by the sub-commands: the database option and JSON output."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

__all__ = ["db_path", "echo_json"]


def db_path(ctx: click.Context) -> Path:
    """The database the command works on (``--db``, ``TOKENTRAIL_DB`` or the default)."""
    from ..store import resolve_db_path

    root = ctx.find_root()
    db = (root.obj or {}).get("db") if root.obj is not None else None
    return resolve_db_path(db)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return str(value)


def echo_json(data: Any) -> None:
    """Print ``data`` as indented JSON (Decimals as strings, datetimes as ISO 8601)."""
    click.echo(json.dumps(data, default=_default, indent=2, ensure_ascii=False))
