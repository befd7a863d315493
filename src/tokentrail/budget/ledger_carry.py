"""Carrying a ledger file that was deleted or replaced into the new file at its path.

A process notices that its ledger path names another file (a deleted data folder, ``rm
usage.duckdb*``) and calls :func:`carry` with both connections; see
``Ledger._reopen_if_replaced``.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

__all__ = ["carry", "file_identity"]


def file_identity(path: Path) -> tuple[int, int]:
    """(device, inode) of the file at ``path``: another number means another file."""
    st = os.stat(path)
    return st.st_dev, st.st_ino


def carry(
    old: sqlite3.Connection, new: sqlite3.Connection, source: str, pid: int, max_units: int
) -> None:
    """Add the old ledger file's spend, holds and alert levels to the new one.

    Every process that had the old file open carries it; ``carried`` remembers how much of
    each (source file, bucket, slot) is in already, so each adds only what the others did
    not (spend settled in the old file before this process noticed the change). This
    process's holds that the old file no longer has were settled there, and go.
    """
    buckets = old.execute("SELECT name, warned, synced, expires FROM buckets").fetchall()
    spend = old.execute("SELECT name, slot, amount FROM spend").fetchall()
    holds = old.execute("SELECT name, reservation, amount, expires, pid FROM holds").fetchall()
    new.execute("BEGIN IMMEDIATE")
    try:
        new.executemany(
            "INSERT INTO buckets VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
            "warned = max(warned, excluded.warned), synced = min(synced, excluded.synced)",
            buckets,
        )
        for name, slot, amount in spend:
            row = new.execute(
                "SELECT amount FROM carried WHERE source = ? AND name = ? AND slot = ?",
                (source, name, slot),
            ).fetchone()
            added = amount - (row[0] if row else 0)
            if added <= 0:
                continue
            new.execute(
                "INSERT INTO spend VALUES (?, ?, ?) ON CONFLICT (name, slot) "
                f"DO UPDATE SET amount = min(amount + excluded.amount, {max_units})",
                (name, slot, added),
            )
            new.execute(
                "INSERT OR REPLACE INTO carried VALUES (?, ?, ?, ?)", (source, name, slot, amount)
            )
        new.executemany("INSERT OR IGNORE INTO holds VALUES (?, ?, ?, ?, ?)", holds)
        kept = {(h[0], h[1]) for h in holds}
        mine = new.execute("SELECT name, reservation FROM holds WHERE pid = ?", (pid,))
        settled = [h for h in mine.fetchall() if (h[0], h[1]) not in kept]
        new.executemany("DELETE FROM holds WHERE name = ? AND reservation = ?", settled)
        new.execute("COMMIT")
    except BaseException:
        new.execute("ROLLBACK")
        raise
