"""Numbered schema migrations, applied in order and recorded in ``tokentrail_migrations``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import StoreError
from .integrity import check_ours
from .schema import MIGRATIONS, SCHEMA_VERSION

__all__ = ["MIGRATIONS_TABLE", "check_readable", "migrate", "schema_version"]

MIGRATIONS_TABLE = "tokentrail_migrations"

_CREATE = f"""
CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (
    version INTEGER NOT NULL,
    name VARCHAR NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
)
"""


def schema_version(con: Any) -> int:
    """The highest migration recorded in the database (0 for a blank database)."""
    found = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
        [MIGRATIONS_TABLE],
    ).fetchall()
    if not found or not found[0][0]:
        return 0
    row = con.execute(f"SELECT coalesce(max(version), 0) FROM {MIGRATIONS_TABLE}").fetchall()
    return int(row[0][0]) if row else 0


def _newer_error(version: int, where: Path | str) -> StoreError:
    return StoreError(
        f"{where} has schema version {version}, newer than this tokentrail supports "
        f"({SCHEMA_VERSION}); upgrade tokentrail to use it"
    )


def migrate(con: Any, where: Path | str = "the database") -> int:
    """Apply every missing migration in order, each in its own transaction.

    Returns the schema version. Raises :class:`StoreError` when the database comes from a
    newer tokentrail, or belongs to someone else (its data is left untouched).
    """
    current = schema_version(con)
    if current == 0:
        check_ours(con, where)
    if current > SCHEMA_VERSION:
        raise _newer_error(current, where)
    if current == SCHEMA_VERSION:
        return current
    con.execute(_CREATE)
    for version, name, statements in MIGRATIONS:
        if version <= current:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            for statement in statements:
                con.execute(statement)
            con.execute(
                f"INSERT INTO {MIGRATIONS_TABLE} (version, name) VALUES (?, ?)", [version, name]
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return SCHEMA_VERSION


def check_readable(con: Any, where: Path | str = "the database") -> bool:
    """Check a read-only connection's schema; True when it is older and needs migrating.

    Raises :class:`StoreError` for a database of a newer schema or someone else's.
    """
    current = schema_version(con)
    if current == 0:
        check_ours(con, where)
    if current > SCHEMA_VERSION:
        raise _newer_error(current, where)
    return current < SCHEMA_VERSION
