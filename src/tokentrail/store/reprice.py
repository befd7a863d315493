"""Recompute stored costs after a catalog update or a newly registered price.

:func:`reprice` prices rows again with the current catalog and overrides (a
``TOKENTRAIL_PRICING`` file, ``tokentrail.pricing.register``): by default only the rows
whose cost is unknown, with ``all_rows`` every row in the time range. A row priced by the
provider itself (``cost_source = 'provider'``) and a framework cache hit ($0: no request
was sent) keep their figure. Each changed row's old figure is kept in the
``tokentrail_repriced`` table (id, when, old and new total, old priced model, source and
catalog version), so a repriced total stays auditable. DuckDB or PostgreSQL.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from ..pricing.types import Cost
from ..records import MONEY_FIELDS
from ..usage import COUNT_FIELDS, Usage
from .connect import connect
from .locks import store_lock
from .maintenance import drain_spool
from .migrate import migrate
from .paths import PostgresUrl, resolve_db_path
from .schema import COST_TYPE

__all__ = ["AUDIT_TABLE", "reprice"]

#: The table keeping each repriced row's previous figure.
AUDIT_TABLE = "tokentrail_repriced"

_AUDIT = f"""
CREATE TABLE IF NOT EXISTS {AUDIT_TABLE} (
    id VARCHAR NOT NULL,
    repriced_at TIMESTAMPTZ NOT NULL,
    old_priced_model VARCHAR,
    old_total_cost {COST_TYPE},
    old_cost_source VARCHAR,
    old_catalog_version VARCHAR,
    new_priced_model VARCHAR,
    new_total_cost {COST_TYPE},
    new_catalog_version VARCHAR
)
"""

_READ: tuple[str, ...] = ("id", "ts", "provider", "model", "priced_model", "total_cost")
_READ += ("cost_source", "catalog_version", "metadata", *COUNT_FIELDS)


def reprice(
    path: str | os.PathLike[str] | PostgresUrl | None = None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    all_rows: bool = False,
    dry_run: bool = False,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Price stored rows again; returns the before/after totals per model.

    Args:
        path: the DuckDB file (default: ``$TOKENTRAIL_DB`` or the user data directory) or
            a PostgreSQL URL.
        since, until: only rows whose call started in ``[since, until)``.
        all_rows: reprice priced rows too (default: only rows whose cost is unknown).
        dry_run: compute and report, change nothing.

    The result has ``rows`` (rows examined), ``changed`` (rows whose cost changed),
    ``still_unpriced`` and ``models``: one entry per model (the catalog's model when it
    is priced now) with ``rows``, ``before`` and ``after`` totals in USD (``before`` counts
    unknown costs as 0; ``unpriced_before`` says how many there were).
    """
    if isinstance(path, PostgresUrl):
        return _reprice_postgres(path, since, until, all_rows, dry_run, timeout)
    db = resolve_db_path(path)
    drain_spool(db, timeout)  # spooled records of processes that are gone are stored first
    if not db.exists():
        return _summary([], dry_run)
    with store_lock(db, timeout=timeout):
        con = connect(db, timeout=timeout)
        try:
            migrate(con, db)
            changes = _priced_again(con.execute, since, until, all_rows)
            if not dry_run:
                _write(_DuckWriter(con), changes)
        finally:
            con.close()
    return _summary(changes, dry_run)


def _reprice_postgres(
    url: PostgresUrl,
    since: datetime | None,
    until: datetime | None,
    all_rows: bool,
    dry_run: bool,
    timeout: float,
) -> dict[str, Any]:
    from .postgres_maintenance import drain
    from .postgres_reading import reading_postgres

    drain(url, timeout)
    with reading_postgres(url, timeout=timeout) as con:
        changes = _priced_again(con.execute, since, until, all_rows)
        if not dry_run:
            _write(_PostgresWriter(con.raw), changes)
    return _summary(changes, dry_run)


def _priced_again(
    execute: Callable[[str, list[Any]], Any],
    since: datetime | None,
    until: datetime | None,
    all_rows: bool,
) -> list[tuple[dict[str, Any], Cost | None]]:
    """Each selected row with its cost under today's prices (``None``: still unknown)."""
    from ..pricing import default_pricer

    pricer = default_pricer()
    where, params = _where(since, until, all_rows)
    changes = []
    for values in execute(f"SELECT {', '.join(_READ)} FROM usage{where}", params).fetchall():
        row = dict(zip(_READ, values, strict=True))
        if _keeps_its_figure(row):
            continue
        usage = Usage.from_counts({n: row[n] for n in COUNT_FIELDS}, source="stored")
        cost = pricer.cost(
            row["model"], provider=row["provider"], at=row["ts"], usage=usage, variant=_variant(row)
        )
        changes.append((row, cost))
    return changes


class _DuckWriter:
    def __init__(self, con: Any) -> None:
        self.con = con

    def execute(self, sql: str, rows: list[tuple[Any, ...]] | None = None) -> None:
        if rows is None:
            self.con.execute(sql)
        else:
            self.con.executemany(sql, rows)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield
            self.con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                self.con.execute("ROLLBACK")
            raise


class _PostgresWriter:
    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def execute(self, sql: str, rows: list[tuple[Any, ...]] | None = None) -> None:
        from .postgres_reading import to_psycopg

        if rows is None:
            self.raw.execute(sql)
        else:
            with self.raw.cursor() as cursor:
                cursor.executemany(to_psycopg(sql), rows)

    def transaction(self) -> Any:
        return self.raw.transaction()


def _where(since: datetime | None, until: datetime | None, all_rows: bool) -> tuple[str, list[Any]]:
    clauses = [] if all_rows else ["total_cost IS NULL"]
    params: list[Any] = []
    if since is not None:
        clauses.append("ts >= ?")
        params.append(_utc(since))
    if until is not None:
        clauses.append("ts < ?")
        params.append(_utc(until))
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _metadata(row: dict[str, Any]) -> dict[str, Any]:
    raw = row["metadata"]
    if not raw:
        return {}
    try:
        found = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _keeps_its_figure(row: dict[str, Any]) -> bool:
    """A provider-reported cost and a cache hit's $0 are facts, not catalog prices."""
    if row["total_cost"] is None:
        return False
    return row["cost_source"] == "provider" or bool(_metadata(row).get("cache_hit"))


def _variant(row: dict[str, Any]) -> str | None:
    value = _metadata(row).get("price_variant")
    return value if isinstance(value, str) else None


def _differs(row: dict[str, Any], cost: Cost) -> bool:
    return (row["total_cost"], row["priced_model"], row["cost_source"]) != (
        cost.total,
        cost.model,
        cost.source,
    )


def _write(writer: Any, changes: list[tuple[dict[str, Any], Cost | None]]) -> None:
    changed = [(r, c) for r, c in changes if c is not None and _differs(r, c)]
    if not changed:
        return
    now = datetime.now(timezone.utc)
    sets = ", ".join(f"{column} = ?" for column, _ in MONEY_FIELDS)
    update = (
        f"UPDATE usage SET {sets}, priced_model = ?, currency = ?, cost_source = ?, "
        "catalog_version = ? WHERE id = ?"
    )
    with writer.transaction():
        writer.execute(_AUDIT)
        writer.execute(
            f"INSERT INTO {AUDIT_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    row["id"],
                    now,
                    row["priced_model"],
                    row["total_cost"],
                    row["cost_source"],
                    row["catalog_version"],
                    cost.model,
                    cost.total,
                    cost.catalog_version,
                )
                for row, cost in changed
            ],
        )
        writer.execute(
            update,
            [
                (
                    *(getattr(cost, attr) for _, attr in MONEY_FIELDS),
                    cost.model,
                    cost.currency,
                    cost.source,
                    cost.catalog_version,
                    row["id"],
                )
                for row, cost in changed
            ],
        )


def _summary(
    changes: Iterable[tuple[dict[str, Any], Cost | None]], dry_run: bool
) -> dict[str, Any]:
    models: dict[str, dict[str, Any]] = {}
    examined = changed = unpriced = 0
    zero = Decimal(0)
    for row, cost in changes:
        examined += 1
        name = (cost.model if cost is not None else None) or row["priced_model"] or row["model"]
        entry = models.setdefault(
            str(name or "(unknown)"),
            {"rows": 0, "before": zero, "after": zero, "unpriced_before": 0, "unpriced_after": 0},
        )
        entry["rows"] += 1
        old = row["total_cost"]
        entry["before"] += old if old is not None else zero
        entry["unpriced_before"] += old is None
        if cost is None:
            unpriced += 1
            entry["unpriced_after"] += 1
            entry["after"] += old if old is not None else zero
            continue
        entry["after"] += cost.total
        changed += _differs(row, cost)
    ordered = dict(sorted(models.items(), key=lambda kv: (-kv[1]["after"], kv[0])))
    return {
        "dry_run": dry_run,
        "rows": examined,
        "changed": changed,
        "still_unpriced": unpriced,
        "models": ordered,
    }
