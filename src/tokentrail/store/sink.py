"""Which batch writer a database gets: DuckDB's (``batch``) or PostgreSQL's (``postgres``)."""

from __future__ import annotations

from .batch import Batches, Stored
from .notices import Notices
from .paths import Database, PostgresUrl
from .postgres import PostgresBatches

__all__ = ["batches_for"]


def batches_for(db: Database, stored: Stored, notices: Notices) -> Batches | PostgresBatches:
    """The object that writes the spool's batches into ``db``."""
    if isinstance(db, PostgresUrl):
        return PostgresBatches(db, stored, notices)
    return Batches(db, stored, notices)
