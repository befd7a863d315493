"""Budget status without a running tracker (the CLI's view): the store plus the shared ledger.

For each saved (or ad-hoc) budget definition, the spend of its current window is summed
from the ``usage`` table: one row for ``global`` budgets, tags and per-key overrides, one
row per key seen in the window for ``user``/``session``/``operation``/``model`` scopes
(keys with their own override are left to the override). When the database has a budget
ledger (``<database>.ledger.sqlite``), its figures are merged in: spend settled by a guard
but still in a process's spool, keys only the ledger has seen, and the reservations of
calls in flight. A PostgreSQL store is read the same way, its ledger being tables in the
same database. ``run`` and ``call`` windows are in-process only and are skipped.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from ..store.paths import PostgresUrl
from ..store.schema import COST_TYPE
from .amounts import Amount, zero
from .definition import parse_limit
from .ledger import Ledger, LedgerError, Slot, from_units
from .ledgers import existing_ledger
from .scopes import Scope, parse_scope
from .status import BudgetStatus
from .windows import Window, calendar_span, parse_window, zone

__all__ = ["status_from_store"]

_COLUMN = {"user": "user_id", "session": "session_id", "operation": "operation", "model": "model"}


@dataclass(frozen=True, slots=True)
class _Spec:
    """One saved definition, parsed, with its current window's bounds."""

    number: int
    unit: str
    window: Window
    scope: Scope
    key: str | None
    limit: Amount
    name: str | None
    start: datetime | None
    end: datetime | None
    since: datetime | None  # rolling windows: the oldest call counted


def status_from_store(
    path: str | os.PathLike[str] | PostgresUrl,
    specs: Iterable[Mapping[str, Any]],
    *,
    now: datetime | None = None,
) -> list[BudgetStatus]:
    """Every budget window's spend, limit and percent, read from the database at ``path``
    (a DuckDB file or a PostgreSQL URL).

    ``specs`` are budget definitions as saved by ``tracker.budget`` (see
    :func:`tokentrail.budget.persist.spec_of`): ``unit``, ``limit``, ``per``, ``scope``,
    ``key``, ``tz``. Sorted by percent used, highest first.
    """
    from ..store import reading

    moment = now or datetime.now(timezone.utc)
    specs = list(specs)
    overrides = {
        (s.get("scope"), s.get("per"), s.get("unit"), s.get("key"))
        for s in specs
        if s.get("key") is not None
    }
    ledger = existing_ledger(path)
    out: list[BudgetStatus] = []
    try:
        with reading(path) as con:
            for number, raw in enumerate(specs, start=1):
                spec = _parse(number, raw, moment)
                if spec is None:
                    continue
                stored = _store_spend(con, spec)
                held = _ledger_spend(ledger, spec, moment)
                for key in sorted({*stored, *held}, key=lambda k: (k is None, str(k))):
                    if (
                        spec.key is None
                        and (raw.get("scope"), raw.get("per"), spec.unit, key) in overrides
                    ):
                        continue  # the key's own override reports it
                    ledger_spent, reserved = held.get(key, (zero(spec.unit), zero(spec.unit)))
                    spent = max(stored.get(key, zero(spec.unit)), ledger_spent)
                    out.append(_status(spec, key, spent, reserved))
    finally:
        if ledger is not None:
            ledger.close()
    out.sort(key=lambda s: s.percent, reverse=True)
    return out


def _parse(number: int, raw: Mapping[str, Any], moment: datetime) -> _Spec | None:
    unit = str(raw.get("unit", "usd"))
    window = parse_window(str(raw.get("per", "day")))
    if window.kind in ("run", "call"):
        return None
    start = end = since = None
    if window.kind == "calendar":
        start, end = calendar_span(window.name, moment, zone(raw.get("tz") or "UTC"))
    elif window.kind == "rolling" and window.length is not None:
        since = moment - window.length
    key = raw.get("key")
    return _Spec(
        number=number,
        unit=unit,
        window=window,
        scope=parse_scope(str(raw.get("scope", "global"))),
        key=None if key is None else str(key),
        limit=parse_limit(raw.get("limit", 0), unit),
        name=raw.get("name"),
        start=start,
        end=end,
        since=since,
    )


def _store_spend(con: Any, spec: _Spec) -> dict[str | None, Amount]:
    """Spend per key in the spec's current window, from the ``usage`` table."""
    where: list[str] = []
    params: list[Any] = []
    for condition, value in (
        ("ts >= ?", spec.start),
        ("ts < ?", spec.end),
        ("ts >= ?", spec.since),
    ):
        if value is not None:
            where.append(condition)
            params.append(value)
    # The cost type on both stores: an empty sum reads the same ("0.000000000000") on each.
    measure = (
        f"coalesce(sum(total_cost), 0)::{COST_TYPE}"
        if spec.unit == "usd"
        else "coalesce(sum(total_tokens), 0)"
    )
    group = "session_id" if spec.window.kind == "session" else _COLUMN.get(spec.scope.kind)
    if spec.key is not None or group is None:
        condition, extra = spec.scope.sql_filter(spec.key)
        clause = " AND ".join([*where, condition])
        row = con.execute(
            f"SELECT {measure} FROM usage WHERE {clause}", [*params, *extra]
        ).fetchone()
        rows = [(spec.key, row[0] if row else 0)]
    else:
        clause = " AND ".join(where) or "TRUE"
        rows = con.execute(
            f"SELECT {group}, {measure} FROM usage WHERE {clause} GROUP BY 1", params
        ).fetchall()
    return {(None if k is None else str(k)): (_amount(v, spec.unit)) for k, v in rows}


def _ledger_spend(
    ledger: Ledger | None, spec: _Spec, moment: datetime
) -> dict[str | None, tuple[Amount, Amount]]:
    """(spent, reserved) per key in the spec's current window, from the shared ledger."""
    if ledger is None or spec.window.kind == "session":
        return {}  # session buckets are keyed by scope value and session: no flat view
    wid = spec.start.isoformat() if spec.start is not None else spec.window.kind
    head = [spec.unit, spec.scope.name, spec.window.name, wid]
    cutoff = int(spec.since.timestamp() // 60) if spec.since is not None else None
    try:
        if spec.key is not None or spec.scope.kind in ("global", "tag"):
            names = [json.dumps([*head, spec.key])]
        else:
            names = ledger.names(json.dumps(head)[:-1] + ", ")
        slots = [Slot(n) if cutoff is None else Slot(n, cutoff=cutoff) for n in names]
        seen = ledger.read(slots, time.time())  # holds expire by the wall clock
    except LedgerError:
        return {}
    return {
        json.loads(s.name)[4]: (from_units(v.spent, spec.unit), from_units(v.reserved, spec.unit))
        for s, v in zip(slots, seen, strict=True)
    }


def _amount(value: Any, unit: str) -> Amount:
    return Decimal(value) if unit == "usd" else int(value)


def _status(spec: _Spec, key: str | None, spent: Amount, reserved: Amount) -> BudgetStatus:
    return BudgetStatus(
        budget_id=spec.number,
        scope=spec.scope.name,
        key=key,
        window=spec.window.name,
        unit=spec.unit,
        limit=spec.limit,
        spent=spent,
        reserved=reserved,
        window_start=spec.start,
        window_end=spec.end,
        name=spec.name,
    )
