"""Open the usage database for reading.

Uses ``tokentrail.store.reading`` (lock-friendly, works before the file exists). A DuckDB
connection may be passed instead of a path, e.g. one with a ``usage`` view over a Parquet
dataset: analytics run unchanged over it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["Source", "connect"]

#: A database path, ``None`` for the default database, or an open DuckDB connection.
Source = str | os.PathLike[str] | Any | None


@contextlib.contextmanager
def connect(source: Source) -> Iterator[Any]:
    """Yield a DuckDB connection with a ``usage`` table (possibly empty)."""
    import duckdb

    if isinstance(source, duckdb.DuckDBPyConnection):
        yield source
        return
    try:
        from ..store import reading, resolve_db_path
    except ImportError:  # store package still being written: read the file directly
        with _fallback(Path(source) if source is not None else None) as con:
            yield con
        return
    path: Path = resolve_db_path(source)
    with reading(path) as con:
        yield con


@contextlib.contextmanager
def _fallback(path: Path | None) -> Iterator[Any]:
    import duckdb

    from ..store.schema import MIGRATIONS

    if path is not None and path.exists():
        con = duckdb.connect(str(path), read_only=True)
    else:
        con = duckdb.connect()
        for _version, _name, statements in MIGRATIONS:
            for statement in statements:
                con.execute(statement)
    try:
        yield con
    finally:
        con.close()
