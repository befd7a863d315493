"""``BudgetGuard``: reserve a call's worst case before it leaves, settle the real cost after.

Pre-flight (:meth:`BudgetGuard.reserve`): the prompt is counted with the model's tokenizer
(:mod:`tokentrail.estimate`), ``max_tokens`` (or :attr:`GuardConfig.default_output_tokens`)
is added for the reply, the sum is priced with :func:`tokentrail.pricing.cost`, and that
worst case is reserved against every budget that applies to the call, all under one lock:
either every budget takes the reservation or none does and
:class:`~tokentrail.BudgetExceededError` is raised. Because a reservation is held until the
call settles, parallel calls cannot together overshoot a limit: each sees the others'
reservations. At capture (:meth:`settle`) the reservation is swapped for the real cost;
errors and cancellations release it (keeping whatever the provider did bill).

Unknown models (no price in the catalog) with USD budgets follow each budget's ``unpriced``
policy: ``"refuse"`` (default: the guard cannot bound what it cannot price),
``"allow"`` (the call passes; its USD spend counts as 0), or a fallback price
``(input_usd_per_mtok, output_usd_per_mtok)``. Token budgets always apply.

Spend survives restarts: the first time a bucket is used it loads the spend already in the
store for its window (every process's rows). Processes sharing a database reload every
:attr:`GuardConfig.reload_every` seconds, so the cross-process overshoot is bounded by what
the *other* processes can spend in ``reload_every`` plus their store writer's flush delay
(each process alone never exceeds the limit it sees). ``run`` and ``call`` windows are
in-process only.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from ..context import Attribution, CallContext
from ..errors import BudgetExceededError, BudgetWarning
from . import matching
from .definition import (
    Amount,
    Budget,
    fallback_price,
    parse_limit,
    parse_unpriced,
    threshold_of,
)
from .ledger import Bucket, LoadResult, load_from_store
from .matching import Spans
from .request import Estimate, GuardConfig, PreflightRequest, Reservation
from .scopes import NOT_APPLICABLE, Scope, parse_scope
from .status import BudgetStatus, CheckResult, retry_after
from .windows import parse_window, zone
from .worst_case import RateCache, estimate_call

if TYPE_CHECKING:
    from ..records import UsageRecord

__all__ = ["BudgetGuard"]

logger = logging.getLogger("tokentrail")

Loader = Callable[
    [Scope, "str | None", "datetime | None", "datetime | None", bool, Sequence[str]], LoadResult
]
_MAX_BUCKETS = 20_000


class BudgetGuard:
    """Every budget of one tracker, their ledger and the one lock that makes it atomic."""

    def __init__(
        self,
        tracker: Any,
        *,
        loader: Loader | None = None,
        config: GuardConfig | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._tracker = tracker
        self.config = config or GuardConfig()
        path = getattr(tracker, "path", None)
        if loader is None and path is not None:

            def loader(
                scope: Scope,
                key: str | None,
                start: datetime | None,
                end: datetime | None,
                rolling: bool,
                ids: Sequence[str],
            ) -> LoadResult:
                return load_from_store(path, scope, key, start, end, rolling, ids)

        self._loader = loader
        self._now = clock or (lambda: datetime.now(timezone.utc))
        self._lock = threading.Lock()
        self._budgets: tuple[Budget, ...] = ()
        self._buckets: dict[tuple[int, str | None, str], Bucket] = {}
        self._ids = itertools.count(1)
        self._unpriced_warned: set[str | None] = set()
        self._spans = Spans()
        self._rates = RateCache()
        self._live: dict[int, Reservation] = {}  # open reservations, oldest first

    # ------------------------------------------------------------------ budgets
    @property
    def budgets(self) -> tuple[Budget, ...]:
        """The budgets in force."""
        return self._budgets

    def add(
        self,
        usd: float | Decimal | str | None = None,
        tokens: int | None = None,
        *,
        per: str | timedelta = "day",
        scope: str = "user",
        warn_at: Sequence[float] | None = (0.5, 0.8, 0.9),
        on_warn: Callable[[BudgetStatus], Any] | None = None,
        tz: str | tzinfo | None = "UTC",
        user_id: str | None = None,
        key: str | None = None,
        unpriced: Literal["refuse", "allow"] | tuple[Any, Any] = "refuse",
        name: str | None = None,
        **settings: Any,
    ) -> Budget | tuple[Budget, Budget]:
        """Add a budget: ``usd`` and/or ``tokens`` per window ``per`` for each ``scope`` key.

        ``per``: ``call``, ``run``, ``session``, ``hour``, ``day``, ``week``, ``month``,
        ``total`` or a rolling length (``"24h"``, ``"7d"``). ``scope``: ``global``, ``user``,
        ``session``, ``operation``, ``model``, ``tag:<name>``. ``user_id`` (or ``key``) makes
        it an override for one user (or one scope value). ``warn_at``: fractions at which a
        :class:`~tokentrail.BudgetWarning` is emitted once per window. ``tz``: the time zone
        calendar windows are cut in. ``unpriced``: see the module docs. Other keywords set
        :class:`GuardConfig` fields. Returns the budget (a pair when both units are given).
        """
        if settings:
            for name_, value in settings.items():
                if not hasattr(self.config, name_):
                    raise TypeError(f"unknown budget option {name_!r}")
                setattr(self.config, name_, value)
        if usd is None and tokens is None:
            if settings:
                return ()  # type: ignore[return-value]
            raise ValueError("a budget needs usd=... or tokens=...")
        window = parse_window(per)
        scope_ = parse_scope(scope)
        if user_id is not None:
            if scope_.kind != "user":
                raise ValueError("user_id= overrides a scope='user' budget")
            key = str(user_id)
        if key is not None and scope_.kind in ("global", "tag"):
            raise ValueError(f"scope {scope_.name!r} has no per-key overrides")
        thresholds = tuple(sorted(float(t) for t in (warn_at or ()) if 0 < float(t) <= 1))
        policy = parse_unpriced(unpriced)
        made: list[Budget] = []
        for unit, raw in (("usd", usd), ("tokens", tokens)):
            if raw is None:
                continue
            limit = parse_limit(raw, unit)
            made.append(
                Budget(
                    id=next(self._ids),
                    unit=unit,  # type: ignore[arg-type]
                    limit=limit,
                    window=window,
                    scope=scope_,
                    key=key,
                    warn_at=thresholds,
                    on_warn=on_warn,
                    tz=zone(tz),
                    unpriced=policy,
                    name=name,
                )
            )
        with self._lock:
            self._budgets = (*self._budgets, *made)
        if self.config.persist:
            self._persist()
        return made[0] if len(made) == 1 else (made[0], made[1])

    def remove(self, budget: Budget) -> None:
        """Stop enforcing ``budget`` (its spend stays in the store)."""
        with self._lock:
            self._budgets = tuple(b for b in self._budgets if b.id != budget.id)
            for k in [k for k in self._buckets if k[0] == budget.id]:
                del self._buckets[k]
        if self.config.persist:
            self._persist(removed=(budget,))

    def _persist(self, removed: Sequence[Budget] = ()) -> None:
        path = getattr(self._tracker, "path", None)
        if path is None:
            return
        try:
            from .persist import save_budgets

            save_budgets(path, self._budgets, removed=removed)
        except Exception:
            logger.warning("tokentrail: could not save budget definitions", exc_info=True)

    # ------------------------------------------------------------------ matching
    def _bucket(self, budget: Budget, key: str | None, window_id: str, now: datetime) -> Bucket:
        """The bucket for (budget, key, window id); call with the lock held."""
        ident = (budget.id, key, window_id)
        bucket = self._buckets.get(ident)
        if bucket is not None:
            return bucket
        start = end = None
        if budget.window.kind == "calendar":
            start, end, _ = self._spans.span(budget.window.name, now, budget.tz)
        bucket = Bucket(
            unit=budget.unit,
            key=key,
            window_id=window_id,
            start=start,
            end=end,
            rolling=budget.window.length,
        )
        # Runs and calls live in this process only; nothing to load.
        if budget.window.kind in ("run", "call") or self._loader is None:
            bucket.needs_load = False
            bucket.loaded_at = time.monotonic()
        # Drop buckets of earlier windows of the same budget and key.
        if start is not None:
            for old, b in list(self._buckets.items()):
                if old[0] == budget.id and old[1] == key and b.end is not None and b.end <= start:
                    del self._buckets[old]
        if len(self._buckets) >= _MAX_BUCKETS:
            del self._buckets[next(iter(self._buckets))]
        self._buckets[ident] = bucket
        return bucket

    def _ensure_loaded(self, budget: Budget, bucket: Bucket) -> None:
        """Load (or periodically reload) the store's spend into ``bucket``; no guard lock held."""
        loader = self._loader
        if loader is None or budget.window.kind in ("run", "call"):
            return
        stale = (
            bucket.needs_load
            or bucket.loaded_at is None
            or time.monotonic() - bucket.loaded_at >= self.config.reload_every
        )
        if not stale:
            return
        first = bucket.loaded_at is None
        # The first load must finish before the bucket is used; later reloads are skipped
        # by other threads while one is running (they use the slightly stale spend).
        if not bucket.load_lock.acquire(blocking=first):
            return
        try:
            if (
                not first
                and bucket.loaded_at is not None
                and (time.monotonic() - bucket.loaded_at < self.config.reload_every)
            ):
                return
            if first and bucket.loaded_at is not None:
                return  # another thread loaded it while we waited
            with self._lock:
                ids = list(bucket.pending)
            start = bucket.start
            if budget.window.kind == "rolling" and budget.window.length is not None:
                start = self._now() - budget.window.length - timedelta(minutes=1)
            try:
                result = loader(
                    budget.scope,
                    bucket.key,
                    start,
                    bucket.end,
                    budget.window.kind == "rolling",
                    ids,
                )
            except Exception:
                logger.warning(
                    "tokentrail: could not load budget spend from the store; "
                    "counting only this process's calls for now",
                    exc_info=True,
                )
                result = None
            with self._lock:
                if result is not None:
                    bucket.apply_load(result)
                    if first:  # thresholds crossed before this process started: no repeat
                        spent = bucket.spent(self._now())
                        bucket.warned.update(
                            t
                            for t in budget.warn_at
                            if spent >= threshold_of(budget.limit, budget.unit, t)
                        )
                bucket.loaded_at = time.monotonic()
                bucket.needs_load = False
        finally:
            bucket.load_lock.release()

    # ------------------------------------------------------------------ estimate
    def estimate(self, request: PreflightRequest) -> Estimate:
        """The worst case of a call: counted prompt + reply bound, priced."""
        # The tracker-wide price variant (batch, flex, priority) prices the reservation too.
        variant = getattr(self._tracker, "_price_variant", None)
        return estimate_call(request, self.config, self._rates, variant)

    def _amount(self, budget: Budget, estimate: Estimate) -> Amount | None:
        """What a call may cost against ``budget``; ``None`` when it cannot be priced."""
        if budget.unit == "tokens":
            return estimate.tokens
        if estimate.usd is not None:
            return estimate.usd
        policy = budget.unpriced
        if policy == "allow":
            return Decimal(0)
        if isinstance(policy, tuple):
            return fallback_price(policy, estimate.input_tokens, estimate.output_tokens)
        return None

    # ------------------------------------------------------------------ reserve / settle
    def reserve(self, request: PreflightRequest) -> Reservation | None:
        """Reserve a call's worst case against every applicable budget, or raise.

        Returns ``None`` when no budget applies. Raises
        :class:`~tokentrail.BudgetExceededError` naming the tightest budget that refuses.
        """
        if not self._budgets:
            return None
        ctx = request.context
        if ctx is None:
            ctx = self._context()
        now = self._now()
        applicable = matching.applicable(
            self._budgets, ctx.attribution, request.model, ctx, now, self._spans
        )
        if not applicable:
            return None
        estimate = self.estimate(request)
        reservation, _, error = self._reserve(applicable, estimate, request, now, commit=True)
        if error is not None:
            raise error
        return reservation

    def _reserve(
        self,
        applicable: list[tuple[Budget, str | None, str]],
        estimate: Estimate,
        request: PreflightRequest,
        now: datetime,
        *,
        commit: bool,
    ) -> tuple[Reservation | None, list[BudgetStatus], BudgetExceededError | None]:
        amounts: list[tuple[Budget, Amount | None]] = [
            (b, self._amount(b, estimate)) for b, _, _ in applicable
        ]
        with self._lock:
            buckets = [self._bucket(b, k, w, now) for b, k, w in applicable]
            fresh = not any(
                self._stale(b, bucket) for (b, _), bucket in zip(amounts, buckets, strict=True)
            )
            if fresh:  # the common case: one lock acquisition, no I/O
                return self._decide(amounts, buckets, estimate, request, now, commit)
        for (budget, _), bucket in zip(amounts, buckets, strict=True):
            self._ensure_loaded(budget, bucket)
        with self._lock:
            return self._decide(amounts, buckets, estimate, request, now, commit)

    def _stale(self, budget: Budget, bucket: Bucket) -> bool:
        if bucket.needs_load:
            return True
        if self._loader is None or budget.window.kind in ("run", "call"):
            return False
        loaded = bucket.loaded_at
        return loaded is None or time.monotonic() - loaded >= self.config.reload_every

    def _decide(
        self,
        amounts: list[tuple[Budget, Amount | None]],
        buckets: list[Bucket],
        estimate: Estimate,
        request: PreflightRequest,
        now: datetime,
        commit: bool,
    ) -> tuple[Reservation | None, list[BudgetStatus], BudgetExceededError | None]:
        """Check every bucket and, when all fit and ``commit``, reserve (lock held)."""
        self._expire_stale()
        failures: list[tuple[Any, BudgetExceededError]] = []
        seen: list[tuple[Budget, Bucket, Amount, Amount]] = []
        for (budget, amount), bucket in zip(amounts, buckets, strict=True):
            spent = bucket.spent(now) if budget.window.kind != "call" else bucket.zero()
            reserved = bucket.reserved
            seen.append((budget, bucket, spent, reserved))
            if amount is None:
                err = BudgetExceededError(
                    scope=budget.scope.name,
                    key=bucket.key,
                    window=budget.window.name,
                    limit=budget.limit,
                    spent=spent,
                    reserved=reserved,
                    estimate=Decimal(0),
                    unit=budget.unit,
                    detail=(
                        f"no price is known for model {request.model!r}, so the call "
                        "cannot be bounded; register a price, or add the budget with "
                        "unpriced='allow' or unpriced=(input_usd_per_mtok, "
                        "output_usd_per_mtok)"
                    ),
                )
                failures.append((-1, err))
                continue
            headroom = budget.limit - spent - reserved
            if amount > headroom:
                err = BudgetExceededError(
                    scope=budget.scope.name,
                    key=bucket.key,
                    window=budget.window.name,
                    limit=budget.limit,
                    spent=spent,
                    reserved=reserved,
                    estimate=amount,
                    unit=budget.unit,
                )
                failures.append(
                    (float(headroom) / float(budget.limit) if budget.limit else -1, err)
                )
        if failures or not commit:
            statuses = [self._status(b, k, sp, rs) for b, k, sp, rs in seen]
            if failures:
                # The tightest budget decides: the one with the least relative headroom.
                failures.sort(key=lambda f: f[0])
                return None, statuses, failures[0][1]
            return None, statuses, None
        entries: list[tuple[Budget, Bucket, Amount]] = []
        for (budget, amount), bucket in zip(amounts, buckets, strict=True):
            assert amount is not None
            if budget.window.kind != "call":
                bucket.reserved += amount
            entries.append((budget, bucket, amount))
        reservation = Reservation(
            id=next(self._ids),
            estimate=estimate,
            entries=entries,
            model=request.model,
            provider=request.provider,
        )
        self._live[reservation.id] = reservation
        return reservation, [], None

    def _expire_stale(self) -> None:
        """Give back reservations older than ``reservation_ttl`` (lock held)."""
        ttl = self.config.reservation_ttl
        if not self._live or ttl <= 0:
            return
        cutoff = time.monotonic() - ttl
        for rid, reservation in list(self._live.items()):
            if reservation.created > cutoff:
                break  # insertion order is creation order
            del self._live[rid]
            if reservation.done:
                continue
            reservation.done = reservation.expired = True
            for budget, bucket, amount in reservation.entries:
                if budget.window.kind != "call":
                    bucket.reserved -= amount
            logger.warning(
                "tokentrail: a budget reservation for model %r was never settled after %g s; "
                "released (its call never reported an end)",
                reservation.model,
                ttl,
            )

    def settle(self, reservation: Reservation | None, record: UsageRecord) -> None:
        """Swap a reservation for the call's real cost (and count unreserved calls).

        Called by ``Tracker.capture`` for every record. An error or cancellation releases
        the reservation; whatever the record says was used still counts. Idempotent.
        """
        if reservation is None:
            if not self._budgets:
                return
            self._settle_unreserved(record)
            return
        warn: list[tuple[Budget, BudgetStatus]] = []
        now = self._now()
        with self._lock:
            self._live.pop(reservation.id, None)
            if reservation.done and not reservation.expired:
                return
            held = not reservation.expired  # an expired one no longer holds its amounts
            reservation.done, reservation.expired = True, False
            for budget, bucket, amount in reservation.entries:
                if budget.window.kind == "call":
                    continue
                if held:
                    bucket.reserved -= amount
                actual = self._actual(budget, record)
                self._count(budget, bucket, record, actual, now, warn)
        self._emit(warn)

    def release(self, reservation: Reservation | None) -> None:
        """Give a reservation back without spending (the call never went out)."""
        if reservation is None:
            return
        with self._lock:
            self._live.pop(reservation.id, None)
            if reservation.done:
                return
            reservation.done = True
            for budget, bucket, amount in reservation.entries:
                if budget.window.kind != "call":
                    bucket.reserved -= amount

    def _settle_unreserved(self, record: UsageRecord) -> None:
        attribution = Attribution(
            user_id=record.user_id,
            session_id=record.session_id,
            operation=record.operation,
            tags=tuple(record.tags),
        )
        now = self._now()
        applicable = matching.applicable(
            self._budgets, attribution, record.model, None, record.ts or now, self._spans
        )
        warn: list[tuple[Budget, BudgetStatus]] = []
        with self._lock:
            for budget, key, window_id in applicable:
                if budget.window.kind in ("call", "run"):
                    continue
                bucket = self._bucket(budget, key, window_id, record.ts or now)
                self._count(budget, bucket, record, self._actual(budget, record), now, warn)
        self._emit(warn)

    def _actual(self, budget: Budget, record: UsageRecord) -> Amount:
        if budget.unit == "tokens":
            return record.usage.total_tokens
        if record.cost is not None:
            return record.cost.total
        if isinstance(budget.unpriced, tuple):
            return fallback_price(
                budget.unpriced, record.usage.input_tokens, record.usage.output_tokens
            )
        if record.usage.total_tokens and record.model not in self._unpriced_warned:
            self._unpriced_warned.add(record.model)
            logger.warning(
                "tokentrail: model %r has no price; its calls count $0 against USD budgets",
                record.model,
            )
        return Decimal(0)

    def _count(
        self,
        budget: Budget,
        bucket: Bucket,
        record: UsageRecord,
        amount: Amount,
        now: datetime,
        warn: list[tuple[Budget, BudgetStatus]],
    ) -> None:
        """Add settled spend to a bucket and note thresholds it crosses (lock held)."""
        before = bucket.spent(now)
        track = self._loader is not None and budget.window.kind not in ("run", "call")
        bucket.add_spend(record.id, amount, record.ts or now, track)
        after = before + amount
        for threshold in budget.warn_at:
            if (
                after >= threshold_of(budget.limit, budget.unit, threshold)
                and threshold not in bucket.warned
            ):
                bucket.warned.add(threshold)
                warn.append((budget, self._status(budget, bucket, after, bucket.reserved)))

    def _emit(self, warn: list[tuple[Budget, BudgetStatus]]) -> None:
        """Warnings, log records and ``on_warn`` callbacks, outside the lock."""
        for budget, status in warn:
            message = f"⚠️ {status.message}"
            logger.warning("tokentrail: %s", message)
            try:
                warnings.warn(message, BudgetWarning, stacklevel=4)
            except BudgetWarning:
                raise  # the user turned warnings into errors on purpose
            except Exception:
                logger.exception("tokentrail: could not emit a budget warning")
            if budget.on_warn is not None:
                try:
                    budget.on_warn(status)
                except Exception:
                    logger.exception("tokentrail: a budget on_warn callback failed")

    # ------------------------------------------------------------------ check / status
    def check(
        self,
        *,
        user_id: str | None = None,
        session_id: str | None = None,
        operation: str | None = None,
        tags: Sequence[str] | None = None,
        model: str | None = None,
        provider: str | None = None,
        messages: Sequence[Mapping[str, Any]] | None = None,
        prompt: str | None = None,
        max_tokens: int | None = None,
        tools: Sequence[Any] | None = None,
        context: CallContext | None = None,
    ) -> CheckResult:
        """Would this call fit every budget? Reserves nothing and never raises for budgets."""
        explicit = Attribution.of(user_id, session_id, operation, tags)
        ctx = context if context is not None else self._context(explicit)
        request = PreflightRequest(
            model=model,
            provider=provider,
            messages=messages,
            prompt=prompt,
            max_tokens=max_tokens,
            tools=tools,
            context=ctx,
        )
        now = self._now()
        applicable = matching.applicable(
            self._budgets, ctx.attribution, model, ctx, now, self._spans
        )
        if not applicable:
            return CheckResult(allowed=True, remaining=None, unit=None, estimate=None)
        estimate = self.estimate(request)
        _, statuses, error = self._reserve(applicable, estimate, request, now, commit=False)
        if error is not None:
            tight = next(
                (
                    s
                    for s in statuses
                    if s.scope == error.scope
                    and s.key == error.key
                    and s.window == error.window
                    and s.unit == error.unit
                ),
                None,
            )
            return CheckResult(
                allowed=False,
                remaining=tight.remaining if tight else None,
                unit=error.unit,
                estimate=estimate,
                reason=str(error),
                retry_after=retry_after(tight, now),
                budget=tight,
                statuses=tuple(statuses),
            )
        tight = min(statuses, key=lambda s: s.remaining / s.limit if s.limit else 0)
        return CheckResult(
            allowed=True,
            remaining=tight.remaining,
            unit=tight.unit,
            estimate=estimate,
            budget=tight,
            statuses=tuple(statuses),
        )

    def status(
        self,
        *,
        user_id: str | None = None,
        session_id: str | None = None,
        operation: str | None = None,
        model: str | None = None,
        tags: Sequence[str] | None = None,
    ) -> list[BudgetStatus]:
        """Spend, reservations, limit and percent of every budget window in use.

        Windows of ``global`` budgets and per-key overrides are always listed; other
        scopes list the keys seen so far (or the one named by the arguments).
        """
        now = self._now()
        wanted = Attribution.of(user_id, session_id, operation, tags)
        seeds: list[tuple[Budget, str | None, str]] = []
        for budget in self._budgets:
            key: Any
            if budget.scope.kind == "global":
                key = None
            elif budget.key is not None:
                key = budget.key
            else:
                key = budget.scope.key_for(wanted, model)
                if key is None or key is NOT_APPLICABLE:
                    continue
            if budget.window.kind in ("call", "run", "session"):
                continue
            window_id = matching.window_id(budget.window, wanted, None, now, budget.tz, self._spans)
            if window_id is not None:
                seeds.append((budget, key, window_id))
        with self._lock:
            for budget, key, window_id in seeds:
                self._bucket(budget, key, window_id, now)
            by_id = {b.id: b for b in self._budgets}
            pairs = [
                (by_id[ident[0]], bucket)
                for ident, bucket in self._buckets.items()
                if ident[0] in by_id
            ]
        out: list[BudgetStatus] = []
        for budget, bucket in pairs:
            if bucket.end is not None and bucket.end <= now:
                continue  # a past window still held by a call in flight
            self._ensure_loaded(budget, bucket)
            with self._lock:
                out.append(self._status(budget, bucket, bucket.spent(now), bucket.reserved))
        return out

    def _status(
        self, budget: Budget, bucket: Bucket, spent: Amount, reserved: Amount
    ) -> BudgetStatus:
        return BudgetStatus(
            budget_id=budget.id,
            scope=budget.scope.name,
            key=bucket.key,
            window=budget.window.name,
            unit=budget.unit,
            limit=budget.limit,
            spent=spent,
            reserved=reserved,
            window_start=bucket.start,
            window_end=bucket.end,
            name=budget.name,
        )

    def _context(self, explicit: Attribution | None = None) -> CallContext:
        fn = getattr(self._tracker, "call_context", None)
        if fn is None:
            return CallContext(attribution=explicit or Attribution())
        ctx: CallContext = fn(explicit)
        return ctx

    def reset(self) -> None:
        """Forget in-memory spend and reservations (spend is reloaded from the store)."""
        with self._lock:
            self._buckets.clear()
