"""Data rights and housekeeping: export, forget a user, prune old rows, status.

Each function opens the database only for its own statement (retrying while a writer
holds it) and raises :class:`StoreError` with a clear message when it cannot.
Before deleting, segments left in the spool by processes that died are stored first, so
that ``forget`` and ``prune`` also reach records that were not in DuckDB yet.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ..errors import StoreError
from .connect import connect, reading
from .locks import store_lock
from .migrate import check_readable, migrate, schema_version
from .paths import PostgresUrl, resolve_db_path, spool_dirs
from .schema import SCHEMA_VERSION
from .segments import (
    LOCK_SUFFIX,
    SEGMENT_SUFFIX,
    make_private_dir,
    segment_rows_estimate,
    token_of,
)

__all__ = [
    "ERASURE_NOTE",
    "EXPORT_FORMATS",
    "drain_spool",
    "export",
    "forget",
    "parse_duration",
    "prune",
    "spool_backlog",
    "status",
    "write_export",
]

#: What ``forget``/``prune`` did to the deleted rows' bytes (the CLI says it).
ERASURE_NOTE = "the file was rewritten: no bytes of them are left"

#: ``--format`` values of :func:`export`.
EXPORT_FORMATS: tuple[str, ...] = ("csv", "parquet", "jsonl")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(y|w|d|h|m|s)\s*$", re.IGNORECASE)
_UNIT = {
    "y": timedelta(days=365),
    "w": timedelta(weeks=1),
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
}


def parse_duration(text: str) -> timedelta:
    """``"365d"``, ``"30d"``, ``"12h"``, ``"2w"``, ``"1y"`` (365 days), ``"90m"`` -> timedelta.

    Raises ``ValueError`` with the accepted forms for anything else.
    """
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(
            f"{text!r} is not a duration: use a number and a unit, e.g. 365d, 30d, 12h, 2w, 1y"
        )
    amount = float(match.group(1))
    try:
        delta: timedelta = _UNIT[match.group(2).lower()] * amount
    except OverflowError:
        raise ValueError(f"{text!r} is longer than any calendar allows") from None
    if delta <= timedelta(0):
        raise ValueError(f"{text!r} must be longer than zero")
    return delta


def spool_backlog(path: str | os.PathLike[str] | PostgresUrl | None = None) -> dict[str, Any]:
    """Records waiting in this host's spool (not in the database yet): segments, records,
    writers. ``path`` is a DuckDB file or a PostgreSQL URL."""
    db = path if isinstance(path, PostgresUrl) else resolve_db_path(path)
    segments = 0
    records = 0
    writers: set[str] = set()
    locations = []
    for directory in spool_dirs(db):
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        found = False
        for name in names:
            if name.endswith(SEGMENT_SUFFIX):
                segments += 1
                found = True
                records += segment_rows_estimate(directory / name)
                writers.add(token_of(name))
            elif name.endswith(LOCK_SUFFIX):
                writers.add(name[: -len(LOCK_SUFFIX)])
        if found:
            locations.append(str(directory))
    return {
        "segments": segments,
        "records": records,
        "writers": len(writers),
        "directories": locations,
    }


def drain_spool(path: str | os.PathLike[str] | None = None, timeout: float = 30.0) -> bool:
    """Store the spooled records of processes that are gone; True when none are left."""
    from .writer import UsageStore

    db = resolve_db_path(path)
    if not any(os.path.isdir(d) for d in spool_dirs(db)):
        return True
    store = UsageStore(db, interval=3600.0)
    try:
        return store.flush(timeout)
    finally:
        store.close(timeout)


def status(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Where the database is, its size, rows, schema version and spool backlog."""
    db = resolve_db_path(path)
    info: dict[str, Any] = {
        "path": str(db),
        "exists": db.exists(),
        "size_bytes": 0,
        "rows": 0,
        "users": 0,
        "first_call": None,
        "last_call": None,
        "schema_version": None,
        "supported_schema_version": SCHEMA_VERSION,
        "spool": spool_backlog(db),
    }
    if not db.exists():
        return info
    wal = db.with_name(db.name + ".wal")
    info["size_bytes"] = db.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    con = connect(db, read_only=True)
    try:
        check_readable(con, db)  # newer schema, someone else's database: a clear error
        version = schema_version(con)
        info["schema_version"] = version
        if version >= 1:
            row = con.execute(
                "SELECT count(*), count(DISTINCT user_id), "
                "strftime(min(ts) AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S.%fZ'), "
                "strftime(max(ts) AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S.%fZ') FROM usage"
            ).fetchall()[0]
            info.update(rows=row[0], users=row[1], first_call=row[2], last_call=row[3])
    finally:
        con.close()
    return info


def _where(user: str | None, since: datetime | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if user is not None:
        clauses.append("user_id = ?")
        params.append(user)
    if since is not None:
        clauses.append("ts >= ?::TIMESTAMPTZ")
        params.append(_utc(since).isoformat())
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def export(
    path: str | os.PathLike[str] | None,
    out: str | os.PathLike[str],
    *,
    fmt: str = "csv",
    user: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    filters: Mapping[str, Any] | None = None,
) -> int:
    """Write the ``usage`` rows to ``out``: all, or those in ``[since, until)`` that match
    ``user`` and ``filters`` (the analytics filters: ``model``, ``operation``, ``tag``...).

    ``fmt`` is ``csv``, ``parquet`` or ``jsonl``; timestamps are written in UTC. Returns
    the number of rows written.
    """
    with reading(path) as con:
        return write_export(con, out, fmt=fmt, user=user, since=since, until=until, filters=filters)


def write_export(
    con: Any,
    out: str | os.PathLike[str],
    *,
    fmt: str = "csv",
    user: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    filters: Mapping[str, Any] | None = None,
) -> int:
    """:func:`export` from an open DuckDB connection holding a ``usage`` table (a file, or
    PostgreSQL's rows copied into memory by ``postgres_maintenance``)."""
    from ..analytics.sql import where as where_clause

    if fmt not in EXPORT_FORMATS:
        raise StoreError(f"unknown export format {fmt!r}: use one of {', '.join(EXPORT_FORMATS)}")
    target = Path(out)
    options = {
        "csv": "FORMAT csv, HEADER true",
        "parquet": "FORMAT parquet",
        "jsonl": "FORMAT json",
    }[fmt]
    selected = {**(filters or {}), "user_id": user} if user is not None else dict(filters or {})
    where_sql, params = where_clause(since, until, selected)
    where = f" {where_sql}" if where_sql else ""
    # COPY writes to a temporary file first so that a failed export never leaves half a file.
    with tempfile.TemporaryDirectory(prefix="tokentrail-export-") as tmp:
        staging = Path(tmp) / f"export.{fmt}"
        con.execute("SET TimeZone = 'UTC'")
        count = con.execute(f"SELECT count(*) FROM usage{where}", params).fetchall()[0][0]
        literal = str(staging).replace("'", "''")
        con.execute(
            f"COPY (SELECT * FROM usage{where} ORDER BY ts, id) TO '{literal}' ({options})",
            params,
        )
        try:
            make_private_dir(target.parent)
            _copy_private(staging, target)
        except OSError as exc:
            raise StoreError(f"cannot write {target}: {exc}") from exc
    return int(count)


def _copy_private(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target``, a new file being readable by this user only."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)
    with open(source, "rb") as src, os.fdopen(os.open(target, flags, 0o600), "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)


def _delete(db: Path, where: str, params: list[Any], timeout: float, dry_run: bool) -> int:
    """Delete the matching rows; when any were, rewrite the file so none of their bytes
    are left in it or its write-ahead log (a checkpoint alone leaves freed blocks as they
    were). Other tokentrail writers wait on the store lock meanwhile."""
    with store_lock(db, timeout=timeout), _private_files():
        con = connect(db, timeout=timeout)
        try:
            migrate(con, db)
            count = int(con.execute(f"SELECT count(*) FROM usage{where}", params).fetchall()[0][0])
            if dry_run or not count:
                return count
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(f"DELETE FROM usage{where}", params)
                con.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(Exception):
                    con.execute("ROLLBACK")
                raise
            con.execute("CHECKPOINT")
            _rewrite(con, db)
        finally:
            con.close()
    return count


@contextlib.contextmanager
def _private_files() -> Iterator[None]:
    """New files are 0600 for the block: the write-ahead log and the rewritten copy hold
    user ids, and DuckDB creates them with the process umask (it replaces a file made
    beforehand). Process-wide, but it only ever makes a file more private."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def _rewrite(con: Any, db: Path) -> None:
    """Copy the database into a new private file and put it in place of ``db``."""
    fresh = db.with_name(db.name + ".rewrite")
    for leftover in (fresh, fresh.with_name(fresh.name + ".wal")):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
    literal = "'" + str(fresh).replace("'", "''") + "'"
    catalog = con.execute("SELECT current_database()").fetchall()[0][0]
    try:
        con.execute(f"ATTACH {literal} AS tokentrail_rewrite")
        con.execute(f'COPY FROM DATABASE "{catalog}" TO tokentrail_rewrite')
        con.execute("DETACH tokentrail_rewrite")
        os.chmod(fresh, 0o600)
        os.replace(fresh, db)
    except BaseException:
        with contextlib.suppress(Exception):
            con.execute("DETACH DATABASE IF EXISTS tokentrail_rewrite")
        with contextlib.suppress(OSError):
            fresh.unlink()
        raise


def _drain_before_delete(db: Path, timeout: float) -> None:
    # A record left in the spool would be stored after the delete and bring the row back.
    if not drain_spool(db, timeout):
        raise StoreError(
            f"records waiting in the spool of {db} could not be stored first (the database "
            "stayed busy or unusable); nothing was deleted: try again"
        )


def forget(
    path: str | os.PathLike[str] | None,
    user: str,
    *,
    timeout: float = 30.0,
    dry_run: bool = False,
) -> int:
    """Delete every row of ``user``; returns how many were deleted (or would be).

    Spooled records of processes that are gone are stored first so they are deleted too;
    then the database file is rewritten, so no byte of the user's rows is left in it or
    in its write-ahead log. Records still being written by a running process are not
    reached: stop it first.
    """
    db = resolve_db_path(path)
    _drain_before_delete(db, timeout)  # a dry run counts the spooled records too
    if not db.exists():
        return 0
    where, params = _where(user, None)
    return _delete(db, where, params, timeout, dry_run)


def prune(
    path: str | os.PathLike[str] | None,
    older_than: timedelta,
    *,
    now: datetime | None = None,
    timeout: float = 30.0,
    dry_run: bool = False,
) -> int:
    """Delete rows whose call started more than ``older_than`` ago; returns how many
    (or would be, with ``dry_run``). The file is rewritten like :func:`forget` does."""
    db = resolve_db_path(path)
    _drain_before_delete(db, timeout)  # a dry run counts the spooled records too
    if not db.exists():
        return 0
    try:
        cutoff = _utc(now or datetime.now(timezone.utc)) - older_than
    except OverflowError:  # longer ago than year 1: nothing is that old
        return 0
    return _delete(db, " WHERE ts < ?::TIMESTAMPTZ", [cutoff.isoformat()], timeout, dry_run)
