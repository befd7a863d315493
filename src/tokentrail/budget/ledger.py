"""The ledger: one bucket of spend per (budget, scope key, window), and loading it from the store.

A bucket's spend is ``base`` (what the store held at the last load, from every process)
plus ``pending`` (calls this process settled whose rows were not in the store at that load,
tracked by record id so a reload never counts them twice) plus, separately, ``reserved``
(worst cases of calls in flight). Buckets hold no lock of their own: the guard's single
lock protects every bucket so that a reservation across several budgets is atomic.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from .scopes import Scope

__all__ = ["Amount", "Bucket", "LoadResult", "load_from_store", "minute_of"]

logger = logging.getLogger("tokentrail")

#: An amount in a budget's unit: USD as Decimal, tokens as int.
Amount = Decimal | int
#: Settled calls remembered by id until a reload finds them in the store.
MAX_PENDING = 20_000
#: Past this age (seconds) a settled call's row is surely written (the store writes in
#: sub-second batches), so it may be folded into the base when ``pending`` is too big.
FOLD_AFTER_S = 60.0


def minute_of(ts: datetime) -> int:
    """Minutes since the epoch: the slot rolling windows keep spend in."""
    return int(ts.timestamp() // 60)


@dataclass(slots=True)
class LoadResult:
    """Spend found in the store for one bucket."""

    usd: Decimal = Decimal(0)
    tokens: int = 0
    #: Rolling windows: minute slot -> (usd, tokens).
    slots: dict[int, tuple[Decimal, int]] = field(default_factory=dict)
    #: Ids (of those asked about) already in the store.
    found: set[str] = field(default_factory=set)


@dataclass(eq=False, slots=True)
class Bucket:
    """Spend and reservations of one budget for one key in one window."""

    unit: str  # "usd" | "tokens"
    key: str | None
    window_id: str
    start: datetime | None = None
    end: datetime | None = None
    rolling: timedelta | None = None
    base: Amount = 0
    base_slots: dict[int, Amount] = field(default_factory=dict)
    # record id -> (amount, minute of the call, time.monotonic() when settled)
    pending: dict[str, tuple[Amount, int, float]] = field(default_factory=dict)
    pending_total: Amount = 0
    reserved: Amount = 0
    warned: set[float] = field(default_factory=set)
    loaded_at: float | None = None  # time.monotonic() of the last load; None = never
    needs_load: bool = True
    load_lock: threading.Lock = field(default_factory=threading.Lock)

    def zero(self) -> Amount:
        """0 in this bucket's unit."""
        return Decimal(0) if self.unit == "usd" else 0

    def spent(self, now: datetime | None = None) -> Amount:
        """Settled spend in the window (for rolling windows: within its length of ``now``)."""
        if self.rolling is None:
            return self.base + self.pending_total
        cutoff = minute_of((now or datetime.now(timezone.utc)) - self.rolling)
        # Slots are whole minutes; keeping the partial oldest minute errs on the safe side.
        for minute in [m for m in self.base_slots if m < cutoff]:
            del self.base_slots[minute]
        for rid in [r for r, (_, m, _) in self.pending.items() if m < cutoff]:
            amount = self.pending.pop(rid)[0]
            self.pending_total -= amount
        return sum(self.base_slots.values(), self.zero()) + self.pending_total

    def add_spend(self, record_id: str | None, amount: Amount, ts: datetime, track: bool) -> None:
        """Count a settled call. ``track``: remember its id until the store has its row."""
        if not amount:
            return
        if track and record_id is not None:
            self.pending[record_id] = (amount, minute_of(ts), time.monotonic())
            self.pending_total += amount
            if len(self.pending) > MAX_PENDING:
                self._fold_oldest()
        elif self.rolling is not None:
            minute = minute_of(ts)
            self.base_slots[minute] = self.base_slots.get(minute, self.zero()) + amount
        else:
            self.base += amount

    def _fold_oldest(self) -> None:
        """Move pending calls settled over :data:`FOLD_AFTER_S` ago into the base.

        A reload replaces the base with the store's sum, which holds those rows by then, so
        folding them does not lose or double-count them; it bounds memory when a bucket is
        settled into for a long time without being reloaded. Young entries stay.
        """
        horizon = time.monotonic() - FOLD_AFTER_S
        old = [rid for rid, entry in self.pending.items() if entry[2] <= horizon]
        for rid in old[: max(len(old), len(self.pending) - MAX_PENDING // 2)]:
            amount, minute, _ = self.pending.pop(rid)
            self.pending_total -= amount
            if self.rolling is not None:
                self.base_slots[minute] = self.base_slots.get(minute, self.zero()) + amount
            else:
                self.base += amount

    def apply_load(self, result: LoadResult) -> None:
        """Replace the base with a fresh load; drop pending ids the store now has."""
        if self.rolling is not None:
            index = 0 if self.unit == "usd" else 1
            self.base_slots = {m: v[index] for m, v in result.slots.items()}
        else:
            self.base = result.usd if self.unit == "usd" else result.tokens
        for rid in result.found:
            entry = self.pending.pop(rid, None)
            if entry is not None:
                self.pending_total -= entry[0]


def load_from_store(
    path: str | os.PathLike[str],
    scope: Scope,
    key: str | None,
    start: datetime | None,
    end: datetime | None,
    rolling: bool,
    ids: Sequence[str],
) -> LoadResult:
    """Sum the spend already in the store for one bucket (any process wrote it).

    ``start``/``end`` bound ``ts`` (call start, UTC) when set; ``rolling`` returns per-minute
    slots instead of one total; ``ids`` are record ids to look for (pending local calls).
    Raises on I/O errors; the guard decides what to do.
    """
    from ..store import reading

    where, params = scope.sql_filter(key)
    conditions = [where]
    if start is not None:
        conditions.append("ts >= ?")
        params.append(start)
    if end is not None:
        conditions.append("ts < ?")
        params.append(end)
    clause = " AND ".join(conditions)
    result = LoadResult()
    with reading(path) as con:
        if rolling:
            rows = con.execute(
                "SELECT CAST(floor(epoch(ts) / 60) AS BIGINT), "
                "coalesce(sum(total_cost), 0), coalesce(sum(total_tokens), 0) "
                f"FROM usage WHERE {clause} GROUP BY 1",
                params,
            ).fetchall()
            for minute, usd, tokens in rows:
                result.slots[int(minute)] = (Decimal(usd), int(tokens))
                result.usd += Decimal(usd)
                result.tokens += int(tokens)
        else:
            row = con.execute(
                "SELECT coalesce(sum(total_cost), 0), coalesce(sum(total_tokens), 0) "
                f"FROM usage WHERE {clause}",
                params,
            ).fetchone()
            if row is not None:
                result.usd, result.tokens = Decimal(row[0]), int(row[1])
        if ids:
            found = con.execute(
                "SELECT id FROM usage WHERE id IN (SELECT unnest(?::VARCHAR[]))", [list(ids)]
            ).fetchall()
            result.found = {str(r[0]) for r in found}
    return result
