"""Between the guard and the ledger: a call's charges, the decision, spend, alerts, store sync.

The guard says which budgets apply; this module turns each into a :class:`Charge` (the
bucket's ledger slot and the amount this call may cost), decides in one ledger
transaction whether all fit (the tightest budget names the refusal), settles real costs
and fires alerts, and takes in spend only the DuckDB store knows (:mod:`.store_spend`):
once inline when a bucket is first used anywhere, then in a background thread.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

from ..errors import BudgetExceededError
from . import alerts
from .amounts import Amount, format_amount, zero
from .definition import Budget, fallback_price
from .ledger import ALL_SLOTS, Ledger, LedgerError, Seen, Slot, from_units, to_units
from .matching import Spans
from .request import Estimate, GuardConfig
from .reservation import Reservation
from .status import BudgetStatus
from .worst_case import price_usage

if TYPE_CHECKING:
    from ..records import UsageRecord

__all__ = ["Accounting", "Charge", "minute_of"]

logger = logging.getLogger("tokentrail")


def minute_of(ts: datetime) -> int:
    """Minutes since the epoch: the slot rolling windows keep spend in."""
    return int(ts.timestamp() // 60)


class Charge(NamedTuple):
    """What one call means for one budget: its bucket, key, window and amount.

    ``amount`` is ``None`` when the call cannot be priced and the budget refuses that.
    """

    budget: Budget
    slot: Slot
    amount: Amount | None
    key: str | None = None
    #: When the call was reserved: its calendar window is worked out from it when a
    #: status or a refusal needs it (most calls need neither).
    when: datetime | None = None
    #: ``amount`` in ledger units (0 when ``None``), converted once.
    need: int = 0

    @property
    def enforced(self) -> bool:
        """False for a free call against a USD budget: never refused, nothing held."""
        # ``need`` is the amount rounded up to whole units: 0 only for a zero amount.
        return self.need != 0 or self.amount is None or self.budget.unit != "usd"


class Accounting:
    """The ledger side of one guard: charges, decisions, settlements, store sync."""

    def __init__(
        self,
        ledger: Ledger,
        config: GuardConfig,
        store_path: str | os.PathLike[str] | None,
        now: Callable[[], datetime],
        spans: Spans,
    ) -> None:
        self.ledger = ledger
        self._spans = spans
        self._slots: dict[tuple[str, str, str, str, str | None], Slot] = {}
        self._limits: dict[int, int] = {}
        self.config = config
        self._store = store_path
        self._now = now
        self._synced: dict[str, float] = {}  # bucket -> time.monotonic() of our last sync
        self._sync_queue: dict[str, Charge] = {}
        self._sync_thread: threading.Thread | None = None
        self._sync_lock = threading.Lock()
        self._warned: set[str] = set()
        # Spend the ledger could not take (it was unreachable): calls, and the most each
        # unit's budgets would have charged per call, summed.
        self._unrecorded_calls = 0
        self._unrecorded: dict[str, Amount] = {}
        self._unrecorded_buckets: set[str] = set()

    # ------------------------------------------------------------------ charges
    def slot(self, budget: Budget, key: str | None, wid: str, when: datetime) -> Slot:
        """The ledger slot of (budget group, key, window id) for a call at ``when``."""
        window = budget.window
        ident = (budget.unit, budget.scope.name, window.name, wid, key)
        found = self._slots.get(ident)
        if found is None:
            if len(self._slots) > 50_000:
                self._slots.clear()
            name = json.dumps(list(ident))
            found = Slot(name)
            if window.kind == "calendar":  # the window id names one period: its end is fixed
                end = self._spans.span(window.name, when, budget.tz)[1]
                found = Slot(name, expires=end.timestamp())
            self._slots[ident] = found
        if window.kind == "rolling" and window.length is not None:
            # Whole minutes: keeping the partial oldest minute errs on the safe side.
            return Slot(found.name, cutoff=minute_of(when - window.length), slot=minute_of(when))
        if window.kind == "run":
            return Slot(found.name, expires=when.timestamp() + 7 * 86400)
        return found

    def charge(
        self, budget: Budget, key: str | None, wid: str, estimate: Estimate, now: datetime
    ) -> Charge:
        """The call's worst case against one budget."""
        amount: Amount | None
        if budget.unit == "tokens":
            amount = estimate.tokens
        elif estimate.usd is not None:
            amount = estimate.usd
        elif budget.unpriced == "allow":
            amount = Decimal(0)
        elif isinstance(budget.unpriced, tuple):
            amount = fallback_price(budget.unpriced, estimate.input_tokens, estimate.output_tokens)
        else:
            amount = None
        need = 0 if amount is None else to_units(amount, budget.unit)
        return Charge(budget, self.slot(budget, key, wid, now), amount, key, now, need)

    def _limit(self, budget: Budget) -> int:
        """A budget's limit in ledger units, rounded down (memoized: it never changes)."""
        found = self._limits.get(budget.id)
        if found is None:
            found = self._limits[budget.id] = to_units(budget.limit, budget.unit, up=False)
        return found

    def _window(self, budget: Budget, now: datetime) -> tuple[datetime | None, datetime | None]:
        """(start, end) of a calendar window containing ``now``; (None, None) otherwise."""
        if budget.window.kind != "calendar":
            return None, None
        start, end, _ = self._spans.span(budget.window.name, now, budget.tz)
        return start, end

    # ------------------------------------------------------------------ decide
    def hold(
        self, ident: str, charges: list[Charge], model: str | None, now: datetime, *, commit: bool
    ) -> tuple[list[BudgetStatus], BudgetExceededError | None, list[Charge]]:
        """Check every charge and, when all fit and ``commit``, hold them (one transaction).

        Returns the budgets' statuses as seen, the refusal (``None`` when all fit) and the
        charges held. Raises :class:`LedgerError` when the ledger cannot be reached.
        """
        shared = [c for c in charges if c.budget.window.kind != "call" and c.enforced]
        for c in shared:
            self._sync_if_needed(c, when="reserve")
        amounts = [c.need for c in shared]
        found: list[tuple[list[Seen], BudgetExceededError | None]] = []

        def fits(seen: list[Seen]) -> bool:
            if len(shared) == len(charges):  # the usual call: every charge is in the ledger
                error = self._refusal(charges, seen, model)
            else:
                by_charge = dict(zip(map(id, shared), seen, strict=True))
                error = self._refusal(
                    charges, [by_charge.get(id(c), _NOTHING) for c in charges], model
                )
            found[:] = [(seen, error)]
            return error is None and commit

        # Holds expire by the wall clock every process shares, not the guard's clock
        # (which tests may set to any day): windows use that one, expiry this one.
        stamp = time.time()
        expires = stamp + self.config.reservation_ttl
        if shared:
            _, _, expired = self.ledger.hold(
                ident, [c.slot for c in shared], amounts, fits, expires=expires, now=stamp
            )
            if expired:
                logger.warning(
                    "tokentrail: %d budget reservation(s) were never settled after %g s; "
                    "released (their calls never reported an end)",
                    expired,
                    self.config.reservation_ttl,
                )
        else:
            fits([])
        seen, error = found[0]
        if error is None and commit:
            return [], None, charges  # the common case: nobody reads statuses
        by_charge = dict(zip(map(id, shared), seen, strict=True))
        statuses = [self._status_of(c, by_charge.get(id(c))) for c in charges]
        return statuses, error, ([] if error else charges)

    def _refusal(
        self, charges: list[Charge], seen: list[Seen], model: str | None
    ) -> BudgetExceededError | None:
        """The refusal of the tightest budget that does not fit, or ``None``.

        ``seen``: each charge's bucket as the transaction saw it, in the charges' order.
        Runs inside the ledger transaction for every call: integers only until a budget
        refuses (the error's amounts are converted then).
        """
        failures: list[tuple[float, Charge, Seen, str | None]] = []
        for c, state in zip(charges, seen, strict=True):
            if c.amount is None:
                failures.append((-1.0, c, state, _unpriced_detail(model)))
                continue
            if not c.enforced:
                continue
            if c.budget.window.kind == "call":
                state = _NOTHING  # the call alone against the limit
            limit = self._limit(c.budget)
            headroom = limit - state.spent - state.reserved
            if c.need > headroom:
                failures.append((headroom / limit if limit else -1.0, c, state, None))
        if not failures:
            return None
        _, tight, state, why = min(failures, key=lambda f: f[0])
        unit = tight.budget.unit
        return self._error(
            tight,
            from_units(state.spent, unit),
            from_units(state.reserved, unit),
            zero(unit) if tight.amount is None else tight.amount,
            why,
        )

    def _error(
        self, c: Charge, spent: Amount, reserved: Amount, estimate: Amount, detail: str | None
    ) -> BudgetExceededError:
        budget = c.budget
        end = None if c.when is None else self._window(budget, c.when)[1]
        return BudgetExceededError(
            scope=budget.scope.name,
            key=c.key,
            window=budget.window.name,
            limit=budget.limit,
            spent=spent,
            reserved=reserved,
            estimate=estimate,
            unit=budget.unit,
            detail=detail,
            resets_at=end if budget.window.kind == "calendar" else None,
        )

    def _status_of(self, c: Charge, seen: Seen | None) -> BudgetStatus:
        state = seen or Seen(0, 0)
        unit = c.budget.unit
        start, end = (None, None) if c.when is None else self._window(c.budget, c.when)
        return _status(
            c.budget,
            c.key,
            from_units(state.spent, unit),
            from_units(state.reserved, unit),
            start,
            end,
        )

    # ------------------------------------------------------------------ settle
    def actual(
        self, budget: Budget, record: UsageRecord, reservation: Reservation | None
    ) -> Amount:
        """What a finished call costs against ``budget``: never $0 for a call priced at start.

        A response whose model has no price is priced at the request's model; failing
        that, at the amount that was held. Unreserved calls of unpriced models follow the
        budget's ``unpriced`` policy.
        """
        if budget.unit == "tokens":
            return record.usage.total_tokens
        if record.cost is not None:
            return record.cost.total
        if reservation is not None and reservation.estimate.usd is not None:
            priced = price_usage(reservation.model, reservation.provider, record.usage)
            if priced is not None:
                return priced
            held = [a for b, _, a in reservation.entries if b is budget]
            return held[0] if held else reservation.estimate.usd
        if isinstance(budget.unpriced, tuple):
            usage = record.usage
            return fallback_price(budget.unpriced, usage.input_tokens, usage.output_tokens)
        if record.usage.total_tokens:
            self._warn_once(
                f"unpriced:{record.model}",
                f"model {record.model!r} has no price; its calls count $0 against USD budgets",
            )
        return zero(budget.unit)

    def settle(self, ident: str | None, charges: Sequence[Charge]) -> None:
        """Drop holds, add real spend and fire the alerts it crosses. Never raises."""
        if not charges and ident is None:
            return
        for c in charges:
            self._sync_if_needed(c, when="settle")
        units = [(c.slot, to_units(c.amount or 0, c.budget.unit)) for c in charges]

        def level(index: int, spent: int, warned: float) -> float:
            budget = charges[index].budget
            limit = self._limit(budget)
            fraction = spent / limit if limit else float("inf")
            reached = alerts.crossed(budget, fraction, warned)
            return max(reached) if reached else warned

        try:
            results = self.ledger.settle(ident, units, level, time.time())
        except LedgerError as exc:
            self._unrecorded_spend(charges, exc)
            return
        if self._unrecorded_calls:
            self._ledger_back()
        fired: list[tuple[Budget, BudgetStatus]] = []
        for c, (spent, old, new) in zip(charges, results, strict=True):
            if new <= old:
                continue  # no threshold crossed (the usual settle)
            unit = c.budget.unit
            limit = self._limit(c.budget)
            fraction = spent / limit if limit else float("inf")
            status = _status(
                c.budget,
                c.key or _key_of(c.slot),
                from_units(spent, unit),
                zero(unit),
                *self._window(c.budget, self._now()),
            )
            fired += [(c.budget, status) for _ in alerts.crossed(c.budget, fraction, old)]
        if fired:
            alerts.emit(fired)

    def release(self, ident: str | None, slots: Sequence[Slot]) -> None:
        """Drop a reservation's holds. Never raises (the hold expires anyway)."""
        if ident is None or not slots:
            return
        try:
            self.ledger.release(ident, slots)
        except LedgerError as exc:
            self._warn_once("release", f"could not release a budget reservation ({exc})")

    # ------------------------------------------------------------------ status
    def status(self, budget: Budget, key: str | None, wid: str, now: datetime) -> BudgetStatus:
        """One bucket's status, after taking in the store's spend when it is due."""
        slot = self.slot(budget, key, wid, now)
        charge = Charge(budget, slot, 0, key)
        self._sync_if_needed(charge, when="status")
        start, end = self._window(budget, now)
        try:
            [seen] = self.ledger.read([slot], time.time())
        except LedgerError as exc:
            self._warn_once("status", f"could not read the budget ledger ({exc})")
            seen = Seen(0, 0)
        unit = budget.unit
        return _status(
            budget, key, from_units(seen.spent, unit), from_units(seen.reserved, unit), start, end
        )

    def statuses_of_window(
        self, budget: Budget, wid: str, now: datetime, budgets: Sequence[Budget]
    ) -> list[BudgetStatus]:
        """The status of every key used in ``budget``'s current window (overrides apart)."""
        prefix = json.dumps([budget.unit, budget.scope.name, budget.window.name, wid])[:-1] + ", "
        overridden = {b.key for b in budgets if b.key is not None and b.group == budget.group}
        try:
            names = self.ledger.names(prefix)
        except LedgerError:
            names = []
        keys = [_key_of(Slot(n)) for n in names]
        return [self.status(budget, k, wid, now) for k in keys if k not in overridden]

    # ------------------------------------------------------------------ store sync
    def _sync_if_needed(self, c: Charge, *, when: str) -> None:
        """Take in the store's spend when it is due; ``when`` says how long we may wait.

        ``"reserve"``: the first time anywhere inline (a bounded wait on a guarded call),
        later in the background. ``"settle"``: always in the background (capturing never
        waits on DuckDB). ``"status"``: inline whenever due (nobody's call is waiting).
        """
        if self._store is None or c.budget.window.kind in ("run", "call"):
            return
        name = c.slot.name
        last = self._synced.get(name)
        if last is None:
            try:
                if self.ledger.synced(name) > 0:  # another process (or an earlier run) did
                    self._synced[name] = time.monotonic()
                    return
            except LedgerError:
                return
        elif time.monotonic() - last < self.config.reload_every:
            return
        if when == "status" or (when == "reserve" and last is None):
            self._sync(c)
        else:
            self._synced[name] = time.monotonic()  # one background read per period
            self._sync_later(c)

    def _sync(self, c: Charge) -> None:
        from .store_spend import store_spend

        budget, now = c.budget, self._now()
        start, end = self._window(budget, now)
        if budget.window.kind == "rolling" and budget.window.length is not None:
            start = now - budget.window.length
        wid = json.loads(c.slot.name)[3]
        session = wid[2:] if budget.window.kind == "session" else None
        self._synced[c.slot.name] = time.monotonic()
        try:
            assert self._store is not None
            found = store_spend(
                self._store,
                budget.scope,
                _key_of(c.slot),
                budget.unit,
                start=start,
                end=end,
                rolling=budget.window.kind == "rolling",
                session=session,
                timeout=self.config.store_timeout,
            )
            units = {
                (s if c.slot.cutoff != ALL_SLOTS else 0): to_units(Decimal(str(v)), budget.unit)
                for s, v in found.items()
            }
            self.ledger.merge_store(c.slot, units, time.time())
        except Exception as exc:
            self._warn_once(
                "store",
                f"could not read spend from the store yet ({exc}); the ledger's figures are "
                "used and the store is read again later",
            )

    def _sync_later(self, c: Charge) -> None:
        with self._sync_lock:
            self._sync_queue[c.slot.name] = c
            if self._sync_thread is not None and self._sync_thread.is_alive():
                return
            self._sync_thread = threading.Thread(
                target=self._drain_syncs, name="tokentrail-budget-sync", daemon=True
            )
            self._sync_thread.start()

    def _drain_syncs(self) -> None:
        while True:
            with self._sync_lock:
                if not self._sync_queue:
                    self._sync_thread = None
                    return
                _, c = self._sync_queue.popitem()
            self._sync(c)

    def forget(self) -> None:
        """Forget when buckets were last synced (re-read from the store on next use)."""
        self._synced.clear()

    def _unrecorded_spend(self, charges: Sequence[Charge], exc: Exception) -> None:
        """A settlement the ledger did not take: counted and said once; its buckets read
        the store again once the ledger is back (the call's row is there)."""
        per_unit: dict[str, Amount] = {}
        for c in charges:
            unit = c.budget.unit
            per_unit[unit] = max(per_unit.get(unit, zero(unit)), c.amount or zero(unit))
            if len(self._unrecorded_buckets) < 50_000:
                self._unrecorded_buckets.add(c.slot.name)
        self._unrecorded_calls += 1
        for name, amount in per_unit.items():
            self._unrecorded[name] = self._unrecorded.get(name, zero(name)) + amount
        spent = ", ".join(format_amount(a, u) for u, a in per_unit.items()) or "nothing"
        self._warn_once(
            "settle",
            f"could not record spend in the budget ledger ({exc}); this call's {spent} is "
            "missing from it until the budgets read the store again, which they do once "
            "the ledger is back. Further failures are counted, not logged.",
        )

    def _ledger_back(self) -> None:
        calls, lost = self._unrecorded_calls, self._unrecorded
        self._unrecorded_calls, self._unrecorded = 0, {}
        self._warned.discard("settle")
        for name in self._unrecorded_buckets:
            self._synced[name] = float("-inf")  # due: read the store (it has those calls)
        self._unrecorded_buckets.clear()
        spent = ", ".join(format_amount(a, u) for u, a in lost.items()) or "nothing"
        logger.warning(
            "tokentrail: the budget ledger records spend again; %d call(s) settled while it "
            "could not (%s) are taken in from the store",
            calls,
            spent,
        )

    # ------------------------------------------------------------------ warnings
    def warn_open(self, cause: str) -> None:
        """One warning when an ``on_error="open"`` budget lets a call through undecided."""
        self._warn_once(f"open:{cause[:40]}", f"budget not enforced for this call: {cause}")

    def _warn_once(self, key: str, message: str) -> None:
        if key in self._warned:
            return
        self._warned.add(key)
        logger.warning("tokentrail: %s", message)


_NOTHING = Seen(0, 0)


def _unpriced_detail(model: str | None) -> str:
    return (
        f"no price is known for model {model!r}, so the call cannot be bounded; register a "
        "price, or add the budget with unpriced='allow' or "
        "unpriced=(input_usd_per_mtok, output_usd_per_mtok)"
    )


def _key_of(slot: Slot) -> Any:
    return json.loads(slot.name)[4]


def _status(
    budget: Budget,
    key: str | None,
    spent: Amount,
    reserved: Amount,
    start: datetime | None,
    end: datetime | None,
) -> BudgetStatus:
    return BudgetStatus(
        budget_id=budget.id,
        scope=budget.scope.name,
        key=key,
        window=budget.window.name,
        unit=budget.unit,
        limit=budget.limit,
        spent=spent,
        reserved=reserved,
        window_start=start,
        window_end=end,
        name=budget.name,
    )
