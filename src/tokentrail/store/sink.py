"""Which batch writer a database gets: DuckDB's (``batch``) or PostgreSQL's (``postgres``)."""

from __future__ import annotations

from collections.abc import Callable

from .batch import Batches, Segment
from .notices import Notices
from .paths import Database, PostgresUrl
from .postgres import PostgresBatches

__all__ = ["batches_for"]


def batches_for(
    db: Database, stored: Callable[[list[Segment], int], None], notices: Notices
) -> Batches | PostgresBatches:
    """The object that writes the spool's batches into ``db``."""
    if isinstance(db, PostgresUrl):
        return PostgresBatches(db, stored, notices)
    return Batches(db, stored, notices)
