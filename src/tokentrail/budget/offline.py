"""Budget status computed from the store alone, without a running tracker (the CLI's view).

For each saved (or ad-hoc) budget definition, the spend of its current window is summed
from the ``usage`` table: one row for ``global`` budgets, tags and per-key overrides, one
row per key seen in the window for ``user``/``session``/``operation``/``model`` scopes
(keys with their own override are left to the override). Reservations of calls in flight
live in the processes making them and are not visible here; ``run`` and ``call`` windows
are in-process only and are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from .definition import parse_limit
from .scopes import parse_scope
from .status import BudgetStatus
from .windows import calendar_span, parse_window, zone

__all__ = ["status_from_store"]

_COLUMN = {"user": "user_id", "session": "session_id", "operation": "operation", "model": "model"}


def status_from_store(
    path: str | os.PathLike[str],
    specs: Iterable[Mapping[str, Any]],
    *,
    now: datetime | None = None,
) -> list[BudgetStatus]:
    """Every budget window's spend, limit and percent, read from the database at ``path``.

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
    out: list[BudgetStatus] = []
    with reading(path) as con:
        for number, spec in enumerate(specs, start=1):
            unit = str(spec.get("unit", "usd"))
            window = parse_window(str(spec.get("per", "day")))
            if window.kind in ("run", "call"):
                continue
            scope = parse_scope(str(spec.get("scope", "global")))
            key = spec.get("key")
            limit = parse_limit(spec.get("limit", 0), unit)
            start = end = None
            where: list[str] = []
            params: list[Any] = []
            if window.kind == "calendar":
                start, end = calendar_span(window.name, moment, zone(spec.get("tz") or "UTC"))
                where += ["ts >= ?", "ts < ?"]
                params += [start, end]
            elif window.kind == "rolling" and window.length is not None:
                where.append("ts >= ?")
                params.append(moment - window.length)
            measure = (
                "coalesce(sum(total_cost), 0)"
                if unit == "usd"
                else ("coalesce(sum(total_tokens), 0)")
            )
            group_column = _COLUMN.get(scope.kind)
            if window.kind == "session":
                group_column = "session_id"
            if key is not None or group_column is None:
                condition, extra = scope.sql_filter(key)
                where.append(condition)
                params += extra
                clause = " AND ".join(where) or "TRUE"
                row = con.execute(f"SELECT {measure} FROM usage WHERE {clause}", params).fetchone()
                rows = [(key, row[0] if row else 0)]
            else:
                clause = " AND ".join(where) or "TRUE"
                rows = con.execute(
                    f"SELECT {group_column}, {measure} FROM usage WHERE {clause} GROUP BY 1",
                    params,
                ).fetchall()
                rows = [
                    r
                    for r in rows
                    if (spec.get("scope"), spec.get("per"), unit, r[0]) not in overrides
                ]
            for row_key, spent in rows:
                amount = Decimal(spent) if unit == "usd" else int(spent)
                out.append(
                    BudgetStatus(
                        budget_id=number,
                        scope=scope.name,
                        key=None if row_key is None else str(row_key),
                        window=window.name,
                        unit=unit,
                        limit=limit,
                        spent=amount,
                        reserved=Decimal(0) if unit == "usd" else 0,
                        window_start=start,
                        window_end=end,
                        name=spec.get("name"),
                    )
                )
    out.sort(key=lambda s: s.percent, reverse=True)
    return out
