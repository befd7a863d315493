"""Budget definitions kept in a PostgreSQL store (``persist`` for a URL).

The ``tokentrail_budgets`` table (schema migration 6) holds what ``<db>.budgets.json``
holds beside a DuckDB file: one row per scope, key, window and unit, the latest definition
winning, so every host's ``tokentrail budget status`` sees the budgets of every other.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ..store.paths import PostgresUrl
from ..store.postgres_reading import reading_postgres

__all__ = ["load_specs", "save_specs"]


def load_specs(url: PostgresUrl) -> list[dict[str, Any]]:
    """The saved definitions in the order they were first saved (the sidecar file's order,
    so budget numbers match a DuckDB store's)."""
    with reading_postgres(url, timeout=5.0) as con:
        rows = con.execute("SELECT spec FROM tokentrail_budgets ORDER BY created, identity")
        return [r[0] for r in rows.fetchall() if isinstance(r[0], dict)]


def save_specs(
    url: PostgresUrl, specs: Iterable[tuple[str, dict[str, Any]]], gone: Iterable[str]
) -> None:
    """Upsert ``(identity, spec)`` pairs and delete the ``gone`` identities, in one
    transaction."""
    # libpq's shortest connect timeout: tracker.budget() waits no longer for a server down.
    with reading_postgres(url, timeout=2.0) as con, con.raw.transaction():
        cur = con.raw.cursor()
        cur.executemany("DELETE FROM tokentrail_budgets WHERE identity = %s", [[g] for g in gone])
        cur.executemany(
            "INSERT INTO tokentrail_budgets (identity, spec) VALUES (%s, %s::jsonb) "
            "ON CONFLICT (identity) DO UPDATE SET spec = excluded.spec, updated = now()",
            [[identity, json.dumps(spec)] for identity, spec in specs],
        )
