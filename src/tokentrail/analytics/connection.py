"""Open the usage database for reading.

Uses ``tokentrail.store.reading`` (lock-friendly, works before the file exists), or for a
``postgresql://`` URL a PostgreSQL connection with the same surface (the queries take their
engine-specific SQL from ``dialect``). A DuckDB connection may be passed instead of a path,
e.g. one with a ``usage`` view over a Parquet dataset: analytics run unchanged over it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

__all__ = ["Source", "connect"]

#: A database path or PostgreSQL URL, ``None`` for the default database, or an open
#: DuckDB connection.
Source = str | os.PathLike[str] | Any | None


@contextlib.contextmanager
def connect(source: Source) -> Iterator[Any]:
    """Yield a DuckDB connection with a ``usage`` table (possibly empty)."""
    import duckdb

    if isinstance(source, duckdb.DuckDBPyConnection):
        yield source
        return
    from ..store import reading
    from ..store.paths import resolve_db

    with reading(resolve_db(source)) as con:
        yield con
