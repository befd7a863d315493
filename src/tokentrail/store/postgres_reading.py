"""Reading a PostgreSQL store: a connection that speaks like the DuckDB one.

Analytics, the CLI and the budget's status read through ``con.execute(sql, params)`` with
``?`` parameters, then ``fetchall()``/``fetchone()``/``description``/``df()``.
:class:`PostgresConnection` offers exactly that over psycopg: ``?`` becomes psycopg's
``%s`` (a literal ``%`` is escaped), the session runs in UTC, and the schema is migrated
first so a database that never received a row still has an empty ``usage`` table.
Engine-specific SQL is chosen by ``analytics.dialect``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from typing import Any

from .paths import PostgresUrl

__all__ = ["PostgresConnection", "PostgresCursor", "reading_postgres"]

# A ``?`` that is a parameter: not inside a quoted string or identifier.
_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\?|%")


def to_psycopg(sql: str) -> str:
    """``?`` parameters (outside quotes) as ``%s``; every ``%`` as ``%%`` (psycopg reads
    placeholders inside quotes too)."""

    def swap(match: re.Match[str]) -> str:
        token = match.group(0)
        return "%s" if token == "?" else token.replace("%", "%%")

    return _TOKENS.sub(swap, sql)


class PostgresCursor:
    """The result of :meth:`PostgresConnection.execute`."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    @property
    def description(self) -> list[tuple[str, ...]]:
        return [(d.name,) for d in self._cursor.description or ()]

    def fetchall(self) -> list[tuple[Any, ...]]:
        return list(self._cursor.fetchall()) if self._cursor.description else []

    def fetchone(self) -> tuple[Any, ...] | None:
        row = self._cursor.fetchone() if self._cursor.description else None
        return None if row is None else tuple(row)

    def df(self) -> Any:
        """The rows as a pandas DataFrame."""
        from ..analytics.result import require_pandas

        pd = require_pandas()
        columns = [d[0] for d in self.description]
        return pd.DataFrame([tuple(r) for r in self.fetchall()], columns=columns)


class PostgresConnection:
    """A psycopg connection behind DuckDB's ``execute(sql, params)`` surface."""

    def __init__(self, con: Any) -> None:
        self.raw = con

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> PostgresCursor:
        return PostgresCursor(self.raw.execute(to_psycopg(sql), list(params or [])))

    def close(self) -> None:
        self.raw.close()


@contextlib.contextmanager
def reading_postgres(url: PostgresUrl, *, timeout: float = 30.0) -> Iterator[PostgresConnection]:
    """A connection for queries over the ``usage`` table of a PostgreSQL store.

    Raises :class:`~tokentrail.errors.StoreError` when the server cannot be reached.
    """
    from .postgres import connect_postgres
    from .postgres_schema import migrate_postgres

    raw = connect_postgres(url, timeout, autocommit=True, options="-c TimeZone=UTC")
    try:
        migrate_postgres(raw, str(url))
        yield PostgresConnection(raw)
    finally:
        raw.close()
