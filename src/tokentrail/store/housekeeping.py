"""Which housekeeping module serves a database: :func:`maintenance_for`.

``maintenance`` works on a DuckDB file, ``postgres_maintenance`` on a PostgreSQL URL; both
offer the same functions with the same results (:class:`Maintenance`), so the CLI's
``status``, ``export``, ``forget`` and ``prune`` choose once, here, and never branch.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any, Protocol

from . import maintenance, postgres_maintenance
from .paths import Database, PostgresUrl

__all__ = ["Maintenance", "maintenance_for"]


class Maintenance(Protocol):
    """The housekeeping functions every store kind offers (module-level functions)."""

    ERASURE_NOTE: str

    def status(self, db: Any, /) -> dict[str, Any]: ...

    def export(
        self,
        db: Any,
        out: str | os.PathLike[str],
        /,
        *,
        fmt: str = ...,
        user: str | None = ...,
        since: datetime | None = ...,
        until: datetime | None = ...,
        filters: Any = ...,
    ) -> int: ...

    def forget(
        self, db: Any, user: str, /, *, timeout: float = ..., dry_run: bool = ...
    ) -> int: ...

    def prune(
        self,
        db: Any,
        older_than: timedelta,
        /,
        *,
        now: datetime | None = ...,
        timeout: float = ...,
        dry_run: bool = ...,
    ) -> int: ...


def maintenance_for(db: Database) -> Maintenance:
    """The module that does housekeeping on ``db``: PostgreSQL's for a URL, else DuckDB's."""
    return postgres_maintenance if isinstance(db, PostgresUrl) else maintenance
