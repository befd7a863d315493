"""Status, export, forget and prune for a PostgreSQL store (``maintenance`` for a URL).

The same results as the DuckDB functions in ``maintenance``: ``status`` a dict of the same
keys, ``export`` the same files (the rows are read into an in-memory DuckDB with the
``usage`` schema and written by the same ``COPY ... TO``), ``forget``/``prune`` the number
of rows deleted (or that would be, with ``dry_run``). Spooled records of processes that
are gone are stored first, so they are deleted too. PostgreSQL keeps deleted rows' bytes
until ``VACUUM`` reuses the space; ``forget`` runs ``VACUUM`` on the table.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from .integrity import SAFE_CONFIG
from .maintenance import spool_backlog, write_export
from .paths import PostgresUrl
from .postgres_reading import reading_postgres
from .postgres_schema import PG_SCHEMA_VERSION

__all__ = ["ERASURE_NOTE", "drain", "export", "export_snapshot", "forget", "prune", "status"]

#: What ``forget``/``prune`` did to the deleted rows' bytes (the CLI says it).
ERASURE_NOTE = "VACUUM ran on the table, so PostgreSQL reuses their space"


def status(url: PostgresUrl) -> dict[str, Any]:
    """Where the database is, its size, rows, schema version and this host's spool."""
    info: dict[str, Any] = {
        "path": str(url),
        "exists": True,
        "size_bytes": 0,
        "rows": 0,
        "users": 0,
        "first_call": None,
        "last_call": None,
        "schema_version": None,
        "supported_schema_version": PG_SCHEMA_VERSION,
        "spool": spool_backlog(url),
    }
    with reading_postgres(url) as con:
        size, rows, users, first, last, version = con.execute(
            "SELECT pg_total_relation_size('usage'), count(*), count(DISTINCT user_id), "
            'to_char(min(ts), \'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\'), '
            'to_char(max(ts), \'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\'), '
            "(SELECT max(version) FROM tokentrail_migrations) FROM usage"
        ).fetchone() or (0, 0, 0, None, None, None)
    info.update(
        size_bytes=int(size or 0),
        rows=int(rows),
        users=int(users),
        first_call=first,
        last_call=last,
        schema_version=version,
    )
    return info


@contextlib.contextmanager
def export_snapshot(url: PostgresUrl) -> Iterator[Any]:
    """An in-memory DuckDB connection whose ``usage`` table holds the PostgreSQL rows
    (DuckDB's schema and types), for :func:`tokentrail.store.maintenance.export`.

    Rows travel in Arrow batches of 50,000 (no per-row inserts)."""
    import duckdb
    import pyarrow as pa

    from ..records import TABLE
    from .migrate import migrate

    types = _arrow_types()
    schema = pa.schema([(c.name, types[c.kind]()) for c in TABLE])
    names = ", ".join(c.name for c in TABLE)
    meta = [c.name for c in TABLE].index("metadata")
    duck = duckdb.connect(":memory:", config=SAFE_CONFIG)
    try:
        migrate(duck)
        with reading_postgres(url) as pg:
            cursor = pg.raw.execute(f"SELECT {names} FROM usage ORDER BY ts, id")
            while rows := cursor.fetchmany(50_000):
                columns = [list(c) for c in zip(*rows, strict=True)]
                columns[meta] = [None if m is None else _json(m) for m in columns[meta]]
                batch = pa.table(columns, schema=schema)  # noqa: F841  (read by DuckDB by name)
                duck.execute(f"INSERT INTO usage ({names}) SELECT {names} FROM batch")
        yield duck
    finally:
        duck.close()


def export(
    url: PostgresUrl,
    out: str | os.PathLike[str],
    *,
    fmt: str = "csv",
    user: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    filters: Mapping[str, Any] | None = None,
) -> int:
    """Write the ``usage`` rows to ``out`` like ``maintenance.export`` does for a file (the
    same formats, filters and bytes); returns the number of rows written."""
    with export_snapshot(url) as con:
        return write_export(con, out, fmt=fmt, user=user, since=since, until=until, filters=filters)


def _json(value: Any) -> str:
    # DuckDB's own spelling (compact, UTF-8); key order is PostgreSQL's (jsonb sorts keys).
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _arrow_types() -> dict[str, Any]:
    import pyarrow as pa

    return {
        "text": pa.string,
        "time": lambda: pa.timestamp("us", tz="UTC"),
        "number": pa.float64,
        "tags": lambda: pa.list_(pa.string()),
        "json": pa.string,
        "count": pa.int64,
        "money": lambda: pa.decimal128(18, 12),
        "flag": pa.bool_,
    }


def _delete(url: PostgresUrl, where: str, params: list[Any], dry_run: bool) -> int:
    with reading_postgres(url) as con:
        if dry_run:
            row = con.execute(f"SELECT count(*) FROM usage WHERE {where}", params).fetchone()
            return int(row[0]) if row else 0
        cursor = con.raw.execute(f"DELETE FROM usage WHERE {where.replace('?', '%s')}", params)
        deleted = int(cursor.rowcount)
        if deleted:
            con.raw.execute("VACUUM usage")
        return deleted


def drain(url: PostgresUrl, timeout: float) -> None:
    """Store this host's spooled records of the database first (before a delete or a reprice)."""
    from .writer import UsageStore

    store = UsageStore(url)
    try:
        store.flush(timeout)
    finally:
        store.close(timeout)


def forget(url: PostgresUrl, user: str, *, timeout: float = 30.0, dry_run: bool = False) -> int:
    """Delete every row of ``user``; how many were deleted (or would be)."""
    drain(url, timeout)
    return _delete(url, "user_id = ?", [user], dry_run)


def prune(
    url: PostgresUrl,
    older_than: timedelta,
    *,
    now: datetime | None = None,
    timeout: float = 30.0,
    dry_run: bool = False,
) -> int:
    """Delete rows whose call started more than ``older_than`` ago; how many (or would be)."""
    drain(url, timeout)
    moment = now or datetime.now(timezone.utc)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    try:
        cutoff = moment - older_than
    except OverflowError:
        return 0
    return _delete(url, "ts < ?", [cutoff], dry_run)
