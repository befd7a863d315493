"""Opening the DuckDB file: retry while another process holds it, clear errors otherwise.

DuckDB lets one process write a file at a time (readers in other processes need the
writer gone too). tokentrail writers hold the file only for one batch, so a lock conflict
is almost always over in milliseconds: it is retried with jittered exponential backoff,
never surfaced, until ``timeout``. Anything else (a corrupt file, a file from a newer
DuckDB, a directory without write permission) becomes a :class:`StoreError` that says
what is wrong.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import StoreError
from .integrity import SAFE_CONFIG, check_size, sniff
from .paths import resolve_db_path
from .segments import make_private_dir

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "attach",
    "connect",
    "is_lock_conflict",
    "reader_marker",
    "reading",
    "yield_to_readers",
]

# Substrings of DuckDB errors that mean "someone else has the file right now".
_TRANSIENT = (
    "Could not set lock on file",
    "Conflicting lock is held",
    "different configuration than existing connections",
    "Resource temporarily unavailable",
    # The file is attached by another DuckDB instance of this process (a reader, a writer).
    "Unique file handle conflict",
)


def is_lock_conflict(exc: BaseException) -> bool:
    """True when ``exc`` is DuckDB refusing the file because another connection holds it."""
    text = str(exc)
    return any(marker in text for marker in _TRANSIENT)


def describe(exc: BaseException, path: Path) -> str:
    """A one-line explanation of why ``path`` cannot be used."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "not a valid DuckDB database file" in text:
        return f"{path} is not a DuckDB database (corrupt or another kind of file): {text}"
    if "Permission denied" in text or "Read-only file system" in text:
        return f"no permission to write {path} or its directory: {text}"
    if "version number" in text or "newer version" in text.lower():
        return f"{path} was written by a newer DuckDB than this one: {text}"
    return f"cannot open {path}: {text}"


def reader_marker(path: Path) -> Path:
    """The file a waiting reader touches so that writers let it in (``<db>.reader``)."""
    return path.with_name(path.name + ".reader")


def yield_to_readers(path: Path, limit: float = 0.2) -> None:
    """Wait (up to ``limit`` seconds) while a reader is waiting for ``path``.

    DuckDB's file lock is a try-lock with no queue: with several writers taking turns a
    reader that backs off could wait for minutes. A reader that keeps failing touches
    :func:`reader_marker`; writers pause before their next batch while it is fresh.
    """
    marker = reader_marker(path)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            age = time.time() - os.stat(marker).st_mtime
        except OSError:
            return
        if age > 1.0:  # left by a reader that is gone
            return
        time.sleep(0.01)


def _announce(marker: Path) -> None:
    # In a read-only directory there is no hint; readers still retry.
    with contextlib.suppress(OSError):
        marker.touch()


def connect(
    path: Path, *, read_only: bool = False, timeout: float = 30.0
) -> duckdb.DuckDBPyConnection:
    """Open ``path``, retrying lock conflicts for up to ``timeout`` seconds.

    Raises :class:`StoreError` when the file cannot be used, or when it is still locked
    after ``timeout``. For a writable open the parent directory is created first; a
    read-only open that has to wait asks writers to let it in (see
    :func:`yield_to_readers`).
    """
    import duckdb

    con: duckdb.DuckDBPyConnection = _retrying(
        lambda: duckdb.connect(str(path), read_only=read_only, config=SAFE_CONFIG),
        path,
        read_only,
        timeout,
    )
    try:
        check_size(con, path)
    except BaseException:
        con.close()
        raise
    return con


def attach(con: Any, path: Path, alias: str, *, timeout: float = 30.0) -> None:
    """Attach ``path`` read-write to the open DuckDB connection ``con`` as ``alias``.

    Same retries and errors as :func:`connect`, at a fraction of the cost: a new DuckDB
    instance costs ~20-30 ms of CPU to create and close, an ``ATTACH``/``DETACH`` of the
    same file under 1 ms, and ``DETACH`` releases the file lock just like closing does.
    """
    literal = "'" + str(path).replace("'", "''") + "'"
    _retrying(lambda: con.execute(f"ATTACH {literal} AS {alias}"), path, False, timeout)
    try:
        check_size(con, path, alias)
    except BaseException:
        con.execute(f"DETACH DATABASE IF EXISTS {alias}")
        raise


def _retrying(open_: Callable[[], Any], path: Path, read_only: bool, timeout: float) -> Any:
    import duckdb

    sniff(path)
    created = False
    if not read_only:
        try:
            make_private_dir(path.parent)
        except OSError as exc:
            raise StoreError(f"cannot create the directory of {path}: {exc}") from exc
        created = not path.exists()
    deadline = time.monotonic() + max(0.0, timeout)
    delay = 0.002
    # Readers retry often (a writer's batch takes milliseconds); writers back off further.
    cap = 0.02 if read_only else 0.25
    marker = reader_marker(path)
    waited = False
    try:
        while True:
            try:
                opened = open_()
            except duckdb.Error as exc:
                if not is_lock_conflict(exc):
                    raise StoreError(describe(exc, path)) from exc
                now = time.monotonic()
                if now >= deadline:
                    raise StoreError(
                        f"{path} is still locked by another process after {timeout:g}s: {exc}"
                    ) from exc
                if read_only:
                    _announce(marker)
                    waited = True
                # Jitter keeps several waiting processes from retrying in lock-step.
                time.sleep(min(delay * (0.5 + random.random()), max(0.0, deadline - now)))
                delay = min(delay * 2, cap)
                continue
            if created:  # user ids and metadata: readable by this user only
                with contextlib.suppress(OSError):
                    os.chmod(path, 0o600)
            return opened
    finally:
        if waited:
            with contextlib.suppress(OSError):
                marker.unlink()


@contextlib.contextmanager
def reading(
    path: str | os.PathLike[str] | None = None, *, timeout: float = 30.0
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection for queries over the ``usage`` table.

    Read-only when the file exists (retrying while a writer holds it); a database of an
    older schema is migrated first. When the file does not exist yet, an in-memory
    database with an empty ``usage`` table of the right schema is yielded, so queries
    work and return nothing. Keep the block short: writers wait while it is open.

    Example::

        with reading("usage.duckdb") as con:
            con.sql("SELECT model, sum(total_cost) FROM usage GROUP BY 1").show()
    """
    import duckdb

    from .migrate import check_readable, migrate

    db = resolve_db_path(path)
    con: Any
    if not db.exists():
        con = duckdb.connect(":memory:", config=SAFE_CONFIG)
        migrate(con)
    else:
        con = connect(db, read_only=True, timeout=timeout)
        try:
            stale = check_readable(con, db)
        except BaseException:
            con.close()
            raise
        if stale:
            con.close()
            writer = connect(db, timeout=timeout)
            try:
                migrate(writer, db)
            finally:
                writer.close()
            con = connect(db, read_only=True, timeout=timeout)
    try:
        yield con
    finally:
        con.close()
