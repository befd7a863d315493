"""Spend already in the ``usage`` table for one budget bucket, read from the DuckDB store.

The ledger counts every call settled through a guard; this read adds what only the store
knows (rows written before the ledger existed, or by trackers without a budget). It runs
once when a bucket is first used anywhere, then in the background every
``GuardConfig.reload_every`` seconds, never while a call waits except that first time, and
always with a bounded wait for DuckDB's lock (``GuardConfig.store_timeout``).
"""

from __future__ import annotations

import os
from datetime import datetime

from .scopes import Scope

__all__ = ["store_spend"]


def store_spend(
    path: str | os.PathLike[str],
    scope: Scope,
    key: str | None,
    unit: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    rolling: bool = False,
    session: str | None = None,
    timeout: float = 0.5,
) -> dict[int, object]:
    """The stored spend of one bucket: ``{slot: amount}`` (amount a Decimal or int).

    ``start``/``end`` bound ``ts`` (call start, UTC); ``rolling`` gives one slot per minute
    (minutes since the epoch) instead of slot 0; ``session`` keeps one session's rows.
    Raises when the store cannot be read within ``timeout`` seconds.
    """
    from ..store import reading

    where, params = scope.sql_filter(key)
    conditions = [where]
    for condition, value in (("ts >= ?", start), ("ts < ?", end), ("session_id = ?", session)):
        if value is not None:
            conditions.append(condition)
            params.append(value)
    measure = "sum(total_cost)" if unit == "usd" else "sum(total_tokens)"
    slot = "CAST(floor(epoch(ts) / 60) AS BIGINT)" if rolling else "0"
    sql = (
        f"SELECT {slot} AS slot, coalesce({measure}, 0) FROM usage "
        f"WHERE {' AND '.join(conditions)} GROUP BY 1"
    )
    with reading(path, timeout=timeout) as con:
        rows = con.execute(sql, params).fetchall()
    return {int(s): amount for s, amount in rows}
