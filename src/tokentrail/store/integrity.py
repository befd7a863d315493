"""Checks on what a database path holds before tokentrail writes to it or reads it.

Three things must not pass for a tokentrail database: a file of another kind (a SQLite
file would make DuckDB look for its SQLite extension), a DuckDB file cut short (DuckDB
opens it, takes inserts into its write-ahead log and then cannot checkpoint them), and
someone else's DuckDB database (tokentrail would add its tables to it, or find a
``usage`` table of another shape). Each is a :class:`~tokentrail.errors.StoreError` that
says what the file is and how to fix it; the writer then keeps records in the spool.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import StoreError

__all__ = ["SAFE_CONFIG", "check_ours", "check_size", "sniff"]

#: Configuration of every DuckDB connection tokentrail opens: a file's content never makes
#: DuckDB load or download an extension (a SQLite file at the path would).
SAFE_CONFIG: dict[str, Any] = {
    "autoload_known_extensions": False,
    "autoinstall_known_extensions": False,
}

_SQLITE_MAGIC = b"SQLite format 3\0"
# A DuckDB file starts with a checksum (8 bytes) then the magic bytes "DUCK".
_DUCK_AT = slice(8, 12)
_FIX = (
    "move it aside (or restore it from a backup), or point tokentrail at another file "
    "(Tracker(path), --db or TOKENTRAIL_DB)"
)
# Tables a tokentrail database holds (and the ledger of its budget, if any).
_OURS = frozenset({"usage", "tokentrail_migrations", "tokentrail_ingested"})


def sniff(path: Path) -> None:
    """Raise when ``path`` exists and is not a DuckDB file (read from its first bytes)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except FileNotFoundError:
        return
    except OSError:
        return  # DuckDB says what is wrong (permission, a directory)
    if not head:
        return
    if head.startswith(_SQLITE_MAGIC):
        raise StoreError(f"{path} is a SQLite database, not a tokentrail (DuckDB) one: {_FIX}")
    if head[_DUCK_AT] != b"DUCK":
        raise StoreError(
            f"{path} is not a DuckDB database (corrupt or another kind of file): {_FIX}"
        )


def check_size(con: Any, path: Path, catalog: str | None = None) -> None:
    """Raise when the file attached as ``catalog`` (the connection's own database when
    ``None``) is shorter than the blocks it uses.

    DuckDB opens a truncated file and reads its catalog from the first blocks; what was
    cut off shows only later, as a failed read or a checkpoint that never happens.
    """
    rows = con.execute(
        "SELECT block_size, used_blocks FROM pragma_database_size() "
        "WHERE database_name = coalesce(?, current_database())",
        [catalog],
    ).fetchall()
    if not rows or rows[0][0] is None:
        return
    needed = int(rows[0][0]) * int(rows[0][1])
    try:
        size = path.stat().st_size
    except OSError:
        return
    if size < needed:
        raise StoreError(
            f"{path} is damaged: {size:,} bytes where its blocks need at least {needed:,} "
            f"(the file was cut short); {_FIX}"
        )


def check_ours(con: Any, where: Path | str) -> None:
    """Raise when the current database holds tables and is not a tokentrail database.

    Called for a database without tokentrail's migrations table: empty is fine (it becomes
    one), and so is a ``usage`` table of tokentrail's shape (made by hand or a tool from
    the schema); anything else belongs to someone else.
    """
    names = sorted(
        row[0]
        for row in con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_catalog = current_database()"
        ).fetchall()
    )
    if set(names) <= _OURS - {"usage"}:
        return  # empty, or a tokentrail database interrupted while its first migration ran
    if "usage" in names:
        if set(names) <= _OURS and _usage_is_ours(con):
            return
        what = "its own 'usage' table, not tokentrail's"
    else:
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        what = f"tables of another application ({shown})"
    raise StoreError(f"{where} is not a tokentrail database: it holds {what}; {_FIX}")


def _usage_is_ours(con: Any) -> bool:
    """Whether the ``usage`` table has the columns of tokentrail's first release."""
    from ..records import COLUMNS
    from .segments import LEGACY_WIDTH

    found = {
        row[0]
        for row in con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_catalog = current_database() AND table_name = 'usage'"
        ).fetchall()
    }
    return set(COLUMNS[:LEGACY_WIDTH]) <= found
