"""Which shared ledger a store's budgets use: :func:`open_ledger`."""

from __future__ import annotations

from ..store.paths import PostgresUrl
from .ledger import Ledger, ledger_path
from .ledger_postgres import PostgresLedger

__all__ = ["open_ledger"]


def open_ledger(db: object, *, timeout: float = 1.0) -> Ledger:
    """The shared ledger of a store: tables in its database for a PostgreSQL URL (see
    ``ledger_postgres``), else the SQLite file beside the DuckDB file (in memory for none)."""
    if isinstance(db, PostgresUrl):
        return PostgresLedger(db, timeout=timeout)
    return Ledger(None if db is None else ledger_path(str(db)), timeout=timeout)
