"""The usage store: an embedded DuckDB file fed by a crash-safe spool.

* :func:`resolve_db_path` — where the database is (argument > ``TOKENTRAIL_DB`` > the user
  data directory).
* :class:`UsageStore` — ``submit(record)`` from any thread (microseconds, durable),
  ``flush()``, ``close()``; a background thread writes batches to DuckDB.
* :func:`reading` — a connection for SQL over the ``usage`` table.
* A ``postgresql://`` URL instead of a file: the same spool, drained into PostgreSQL with
  ``COPY`` (``postgres``, ``postgres_rows``, ``postgres_schema``; ``sink`` picks the
  writer), read through ``postgres_reading``; ``reader`` opens either kind.

How a record travels, module by module: ``writer`` (the store) encodes it
(``records.encode_row``) and frames it as a line (``framing``) into this process's
segment file (``segments``; ``locks`` tells live writers from dead ones). The background
writer decides when to store (``cadence``), and each batch (``batch``) copies segments
into the table in bulk (``ingest``) through one in-memory DuckDB (``engine``), after the
numbered migrations (``schema``, ``migrate``); segments of processes that died are
claimed and cut to their last record (``recovery``). ``maintenance`` holds export,
forget, prune and status; ``connect`` opens the file, retrying lock conflicts.
"""

from __future__ import annotations

from .paths import resolve_db_path
from .reader import reading
from .writer import UsageStore

__all__ = ["UsageStore", "reading", "resolve_db_path"]
