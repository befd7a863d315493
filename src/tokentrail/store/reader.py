"""``reading(db)``: a connection for SQL over the ``usage`` table of any store.

A DuckDB file opens through :func:`tokentrail.store.connect.reading` (lock-friendly,
works before the file exists); a ``postgresql://`` URL through
:func:`~tokentrail.store.postgres_reading.reading_postgres` (the same ``execute(sql,
params)`` surface with ``?`` parameters).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from . import connect
from .paths import PostgresUrl, resolve_db

__all__ = ["reading"]


@contextlib.contextmanager
def reading(
    path: str | os.PathLike[str] | PostgresUrl | None = None, *, timeout: float = 30.0
) -> Iterator[Any]:
    """A connection for queries over the ``usage`` table (``path``: a DuckDB file, a
    PostgreSQL URL, or ``None`` for ``TOKENTRAIL_DB`` or the default file).

    Example::

        with reading("usage.duckdb") as con:
            con.execute("SELECT model, sum(total_cost) FROM usage GROUP BY 1").fetchall()
    """
    db = resolve_db(path)
    if isinstance(db, PostgresUrl):
        from .postgres_reading import reading_postgres

        with reading_postgres(db, timeout=timeout) as pg:
            yield pg
        return
    with connect.reading(db, timeout=timeout) as con:
        yield con
