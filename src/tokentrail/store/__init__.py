"""The usage store: an embedded DuckDB file fed by a crash-safe spool.

* :func:`resolve_db_path` — where the database is (argument > ``TOKENTRAIL_DB`` > the user
  data directory).
* :class:`UsageStore` — ``submit(record)`` from any thread (microseconds, durable),
  ``flush()``, ``close()``; a background thread writes batches to DuckDB.
* :func:`reading` — a connection for SQL over the ``usage`` table.
"""

from __future__ import annotations

from .connect import reading
from .paths import resolve_db_path
from .writer import UsageStore

__all__ = ["UsageStore", "reading", "resolve_db_path"]
