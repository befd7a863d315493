"""Budget definitions saved next to the database, so ``tokentrail budget status`` sees them.

``tracker.budget(...)`` writes ``<database>.budgets.json`` (one entry per scope, key, window
and unit; the latest definition wins, entries from other processes are kept). The CLI
reads it and computes each window's spend from the ``usage`` table. A PostgreSQL store
keeps them in its ``tokentrail_budgets`` table instead (``persist_postgres``). Pass
``persist=False`` to ``tracker.budget`` to keep budgets in memory only.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..store.paths import PostgresUrl
from .definition import Budget

__all__ = ["budgets_file", "load_budget_specs", "save_budgets", "spec_of"]


def budgets_file(db_path: str | os.PathLike[str]) -> Path:
    """The sidecar file holding budget definitions for a DuckDB file."""
    return Path(f"{os.fspath(db_path)}.budgets.json")


def spec_of(budget: Budget) -> dict[str, Any]:
    """A budget as a JSON-friendly mapping (the ``add`` arguments that recreate it)."""
    unpriced: Any = budget.unpriced
    if isinstance(unpriced, tuple):
        unpriced = [str(unpriced[0]), str(unpriced[1])]
    return {
        "unit": budget.unit,
        "limit": str(budget.limit),
        "per": budget.window.name,
        "scope": budget.scope.name,
        "key": budget.key,
        "tz": str(getattr(budget.tz, "key", None) or budget.tz),
        "warn_at": list(budget.warn_at),
        "unpriced": unpriced,
        "name": budget.name,
    }


def _identity(spec: dict[str, Any]) -> tuple[Any, ...]:
    return (spec.get("scope"), spec.get("key"), spec.get("per"), spec.get("unit"))


def load_budget_specs(db_path: str | os.PathLike[str] | PostgresUrl) -> list[dict[str, Any]]:
    """The saved definitions (empty when there are none or the file is unreadable).

    For a PostgreSQL URL they are read from its ``tokentrail_budgets`` table (an
    unreachable server raises :class:`~tokentrail.errors.StoreError`)."""
    if isinstance(db_path, PostgresUrl):
        from .persist_postgres import load_specs

        return load_specs(db_path)
    try:
        data = json.loads(budgets_file(db_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    items = data.get("budgets") if isinstance(data, dict) else None
    return [s for s in items or () if isinstance(s, dict)]


def save_budgets(
    db_path: str | os.PathLike[str] | PostgresUrl,
    budgets: Iterable[Budget],
    *,
    removed: Sequence[Budget] = (),
) -> None:
    """Merge ``budgets`` into the sidecar file (atomically replaced), or into the
    ``tokentrail_budgets`` table of a PostgreSQL store."""
    gone = {_identity(spec_of(b)) for b in removed}
    if isinstance(db_path, PostgresUrl):
        from .persist_postgres import save_specs

        specs = [spec_of(b) for b in budgets]
        keep = {_identity(s) for s in specs}
        save_specs(
            db_path,
            [(json.dumps(_identity(s)), s) for s in specs],
            [json.dumps(g) for g in gone - keep],
        )
        return
    target = budgets_file(db_path)
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for spec in load_budget_specs(db_path):
        if _identity(spec) not in gone:
            merged[_identity(spec)] = spec
    for budget in budgets:
        spec = spec_of(budget)
        merged[_identity(spec)] = spec
    payload = {
        "updated": datetime.now(timezone.utc).isoformat(),
        "budgets": list(merged.values()),
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=target.name, suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=2)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
