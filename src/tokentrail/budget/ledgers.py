"""Which shared ledger a store's budgets use: :func:`open_ledger`."""

from __future__ import annotations

from ..store.paths import PostgresUrl, resolve_db
from .ledger import Ledger, ledger_path
from .ledger_postgres import PostgresLedger

__all__ = ["existing_ledger", "open_ledger"]


def open_ledger(db: object, *, timeout: float = 1.0) -> Ledger:
    """The shared ledger of a store: tables in its database for a PostgreSQL URL (see
    ``ledger_postgres``), else the SQLite file beside the DuckDB file (in memory for none)."""
    if isinstance(db, PostgresUrl):
        return PostgresLedger(db, timeout=timeout)
    return Ledger(None if db is None else ledger_path(str(db)), timeout=timeout)


def existing_ledger(db: object, *, timeout: float = 5.0) -> Ledger | None:
    """The shared ledger of a store for reading (the CLI's budget status), or ``None`` for
    a DuckDB file whose ledger file was never made: nothing is created."""
    target = resolve_db(db if isinstance(db, PostgresUrl) else str(db))
    if isinstance(target, PostgresUrl):
        return PostgresLedger(target, timeout=timeout)
    file = ledger_path(target)
    return Ledger(file, timeout=timeout) if file.exists() else None
