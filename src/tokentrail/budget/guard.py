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
import math
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from ..context import Attribution, CallContext
from ..errors import BudgetExceededError, BudgetWarning
from ..formatting import money
from .ledger import Amount, Bucket, LoadResult, load_from_store
from .scopes import NOT_APPLICABLE, Scope, parse_scope
from .windows import Window, calendar_span, parse_window, zone

if TYPE_CHECKING:
    from ..records import UsageRecord

__all__ = [
    "Budget",
    "BudgetGuard",
    "BudgetStatus",
    "CheckResult",
    "Estimate",
    "GuardConfig",
    "PreflightRequest",
    "Reservation",
]

logger = logging.getLogger("tokentrail")

Unpriced = Literal["refuse", "allow"] | tuple[Decimal, Decimal]
Loader = Callable[
    [Scope, "str | None", "datetime | None", "datetime | None", bool, Sequence[str]], LoadResult
]
_MTOK = Decimal(1_000_000)
_MAX_BUCKETS = 20_000


@dataclass(slots=True)
class PreflightRequest:
    """What the guard needs to know about a call before it is sent.

    ``messages`` (chat) or ``prompt`` (completion text) are counted with the model's
    tokenizer; ``max_tokens`` bounds the reply; ``context`` is the call's
    :class:`~tokentrail.context.CallContext` (taken now when ``None``).
    """

    model: str | None
    provider: str | None
    messages: Sequence[Mapping[str, Any]] | None = None
    prompt: str | None = None
    max_tokens: int | None = None
    tools: Sequence[Any] | None = None
    context: CallContext | None = None
    run_id: str | None = None


@dataclass(frozen=True, slots=True)
class Estimate:
    """A call's worst case: prompt tokens (counted), reply tokens (bound) and price."""

    input_tokens: int
    output_tokens: int
    usd: Decimal | None  # None: the model has no price
    exact: bool  # prompt counted with the model's real tokenizer

    @property
    def tokens(self) -> int:
        """``input_tokens + output_tokens``."""
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class Budget:
    """One limit: ``limit`` (USD or tokens) per ``window`` for each key of ``scope``.

    ``key`` set means an override for that one key (e.g. one user); it replaces the
    default budget of the same scope, window and unit for that key.
    """

    id: int
    unit: Literal["usd", "tokens"]
    limit: Amount
    window: Window
    scope: Scope
    key: str | None
    warn_at: tuple[float, ...]
    on_warn: Callable[[BudgetStatus], Any] | None
    tz: tzinfo
    unpriced: Unpriced
    name: str | None = None
    #: ``warn_at`` as amounts in the budget's unit.
    marks: tuple[Amount, ...] = ()
    #: (scope, window, unit), precomputed: it is looked up on every call.
    group_key: tuple[str, str, str] | None = None

    @property
    def group(self) -> tuple[str, str, str]:
        """Budgets in one group override one another per key."""
        return self.group_key or (self.scope.name, self.window.name, self.unit)

    def describe(self) -> str:
        """``$5.00 daily per user`` / ``500,000 tokens monthly for user 'u1'``."""
        amount = _fmt(self.limit, self.unit)
        who = f"for {self.scope.kind} {self.key!r}" if self.key else f"per {self.scope.name}"
        if self.scope.kind == "global":
            who = "overall"
        return f"{amount} {self.window.label} {who}"


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """One budget window's state: what is spent, held by calls in flight, and left."""

    budget_id: int
    scope: str
    key: str | None
    window: str
    unit: str
    limit: Amount
    spent: Amount
    reserved: Amount
    window_start: datetime | None = None
    window_end: datetime | None = None
    name: str | None = None

    @property
    def remaining(self) -> Amount:
        """What can still be spent (never negative)."""
        return max(self.limit - self.spent - self.reserved, _zero(self.unit))

    @property
    def percent(self) -> float:
        """Settled spend as a percentage of the limit."""
        return float(self.spent) / float(self.limit) * 100 if self.limit else 100.0

    @property
    def message(self) -> str:
        """``80% of daily limit used — Tokens: 400,000 / 500,000``."""
        label = _WINDOW_WORDS.get(self.window, f"rolling {self.window}")
        what = "Tokens" if self.unit == "tokens" else "Cost"
        who = f" for {self.scope} {self.key!r}" if self.key is not None else ""
        return (
            f"{self.percent:.0f}% of {label} limit used{who} — {what}: "
            f"{_num(self.spent, self.unit)} / {_num(self.limit, self.unit)}"
        )

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly mapping."""
        return {
            "budget_id": self.budget_id,
            "name": self.name,
            "scope": self.scope,
            "key": self.key,
            "window": self.window,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "unit": self.unit,
            "limit": self.limit,
            "spent": self.spent,
            "reserved": self.reserved,
            "remaining": self.remaining,
            "percent": round(self.percent, 2),
        }

    def __str__(self) -> str:
        return self.message


_WINDOW_WORDS = {
    "hour": "hourly",
    "day": "daily",
    "week": "weekly",
    "month": "monthly",
    "total": "total",
    "call": "per-call",
    "run": "per-run",
    "session": "per-session",
}


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Would a call fit? For web handlers that answer HTTP 429 rather than raise.

    ``remaining`` is the headroom of the tightest budget before this call (in its
    ``unit``), ``retry_after`` the seconds until that budget's window resets (``None`` when
    it never does), ``reason`` why the call would be refused.
    """

    allowed: bool
    remaining: Amount | None
    unit: str | None
    estimate: Estimate | None
    reason: str | None = None
    retry_after: float | None = None
    budget: BudgetStatus | None = None
    statuses: tuple[BudgetStatus, ...] = ()

    def __bool__(self) -> bool:
        return self.allowed


@dataclass(eq=False, slots=True)
class Reservation:
    """Worst-case amounts held in budget buckets for one call until it settles."""

    id: int
    estimate: Estimate
    entries: list[tuple[Budget, Bucket, Amount]]
    model: str | None
    provider: str | None
    created: float = field(default_factory=time.monotonic)
    done: bool = False
    #: Given back by ``reservation_ttl``: a late settle still counts what the call used.
    expired: bool = False


@dataclass(slots=True)
class GuardConfig:
    """Guard-wide settings (``tracker.budget(...)`` passes them through as keywords).

    ``default_output_tokens``: reply tokens reserved when a call sets no ``max_tokens``.
    ``heuristic_margin``: factor on prompt counts that come from the heuristic.
    ``reload_every``: seconds between reloads of store spend (several processes).
    ``persist``: write budget definitions next to the database for ``tokentrail budget``.
    ``reservation_ttl``: seconds after which a reservation that was never settled nor
    released is given back (a call whose end event never came, e.g. another callback
    handler refused it after ours reserved); ``0`` keeps reservations forever.
    """

    default_output_tokens: int = 4096
    heuristic_margin: float = 1.15
    reload_every: float = 5.0
    persist: bool = True
    reservation_ttl: float = 3600.0


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
        self._spans: dict[tuple[str, tzinfo], tuple[datetime, datetime, str]] = {}
        self._rates = _RateCache()
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
        policy = _unpriced_policy(unpriced)
        made: list[Budget] = []
        for unit, raw in (("usd", usd), ("tokens", tokens)):
            if raw is None:
                continue
            limit = _limit(raw, unit)
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
                    marks=tuple(_threshold_of(limit, unit, t) for t in thresholds),
                    group_key=(scope_.name, window.name, unit),
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
    def _applicable(
        self, attribution: Attribution, model: str | None, ctx: CallContext | None, now: datetime
    ) -> list[tuple[Budget, str | None, str]]:
        """(budget, key, window id) for every budget this call counts against."""
        chosen: dict[tuple[str, str, str], list[tuple[Budget, str | None]]] = {}
        overridden: set[tuple[tuple[str, str, str], str | None]] = set()
        for budget in self._budgets:
            key = budget.scope.key_for(attribution, model)
            if key is NOT_APPLICABLE:
                continue
            assert key is None or isinstance(key, str)
            if budget.key is not None:
                if budget.key != key:
                    continue
                overridden.add((budget.group, key))
            chosen.setdefault(budget.group, []).append((budget, key))
        out: list[tuple[Budget, str | None, str]] = []
        for group, items in chosen.items():
            for budget, key in items:
                if budget.key is None and (group, key) in overridden:
                    continue  # a per-key override replaces the default for this key
                window_id = self._window_id(budget.window, attribution, ctx, now, budget.tz)
                if window_id is not None:
                    out.append((budget, key, window_id))
        return out

    def _window_id(
        self,
        window: Window,
        attribution: Attribution,
        ctx: CallContext | None,
        now: datetime,
        tz: tzinfo,
    ) -> str | None:
        kind = window.kind
        if kind == "calendar":
            return self._span(window.name, now, tz)[2]
        if kind in ("total", "rolling"):
            return kind
        if kind == "call":
            return "call"
        if kind == "session":
            return None if attribution.session_id is None else f"s:{attribution.session_id}"
        # run: the innermost track() block of this call; no block, no run budget.
        if ctx is None or not ctx.runs:
            return None
        return f"r:{ctx.runs[-1].run_id}"

    def _span(self, unit: str, now: datetime, tz: tzinfo) -> tuple[datetime, datetime, str]:
        """The calendar window containing ``now`` (cached: zone arithmetic is not free)."""
        cache_key = (unit, tz)
        cached = self._spans.get(cache_key)
        if cached is not None and cached[0] <= now < cached[1]:
            return cached
        start, end = calendar_span(unit, now, tz)
        span = (start, end, start.isoformat())
        self._spans[cache_key] = span
        return span

    def _bucket(self, budget: Budget, key: str | None, window_id: str, now: datetime) -> Bucket:
        """The bucket for (budget, key, window id); call with the lock held."""
        ident = (budget.id, key, window_id)
        bucket = self._buckets.get(ident)
        if bucket is not None:
            return bucket
        start = end = None
        if budget.window.kind == "calendar":
            start, end, _ = self._span(budget.window.name, now, budget.tz)
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
                            t for t in budget.warn_at if spent >= _threshold(budget, t)
                        )
                bucket.loaded_at = time.monotonic()
                bucket.needs_load = False
        finally:
            bucket.load_lock.release()

    # ------------------------------------------------------------------ estimate
    def estimate(self, request: PreflightRequest) -> Estimate:
        """The worst case of a call: counted prompt + reply bound, priced."""
        from .. import estimate as est

        model = None if request.model is None else str(request.model)
        if request.messages:
            prompt = est.count_message_tokens(request.messages, model, request.tools)
        else:
            prompt = est.count_text_tokens(request.prompt, model)
            if request.tools:
                prompt += est.count_tools_tokens(request.tools, model)
        exact = est.is_exact(model)
        if not exact:
            prompt = math.ceil(prompt * self.config.heuristic_margin)
        output = request.max_tokens
        if output is None or isinstance(output, bool) or not isinstance(output, int) or output < 0:
            output = self.config.default_output_tokens
        # The tracker-wide price variant (batch, flex, priority) prices the reservation too.
        variant = getattr(self._tracker, "_price_variant", None)
        usd = self._rates.price(model, request.provider, prompt, output, variant)
        return Estimate(prompt, output, usd, exact)

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
            return _fallback(policy, estimate.input_tokens, estimate.output_tokens)
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
        applicable = self._applicable(ctx.attribution, request.model, ctx, now)
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
        applicable = self._applicable(attribution, record.model, None, record.ts or now)
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
            return _fallback(budget.unpriced, record.usage.input_tokens, record.usage.output_tokens)
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
        for threshold, mark in zip(budget.warn_at, budget.marks, strict=True):
            if after >= mark and threshold not in bucket.warned:
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
        applicable = self._applicable(ctx.attribution, model, ctx, now)
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
                retry_after=_retry_after(tight, now),
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
            window_id = self._window_id(budget.window, wanted, None, now, budget.tz)
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


# ---------------------------------------------------------------------------- helpers
def _zero(unit: str) -> Amount:
    return Decimal(0) if unit == "usd" else 0


def _threshold(budget: Budget, fraction: float) -> Amount:
    return _threshold_of(budget.limit, budget.unit, fraction)


def _threshold_of(limit: Amount, unit: str, fraction: float) -> Amount:
    if unit == "usd":
        return Decimal(limit) * Decimal(str(fraction))
    return math.ceil(int(limit) * fraction)


def _limit(raw: Any, unit: str) -> Amount:
    if unit == "usd":
        value = Decimal(str(raw))
        if not value.is_finite() or value < 0:
            raise ValueError(f"usd must be a non-negative amount, got {raw!r}")
        return value
    try:
        value = Decimal(str(raw))
    except ArithmeticError:
        value = Decimal(-1)
    if isinstance(raw, bool) or not value.is_finite() or value != int(value) or value < 0:
        raise ValueError(f"tokens must be a non-negative integer, got {raw!r}")
    return int(value)


def _unpriced_policy(value: Any) -> Unpriced:
    if value in ("refuse", "allow"):
        return value  # type: ignore[no-any-return]
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return (Decimal(str(value[0])), Decimal(str(value[1])))
    raise ValueError(
        "unpriced must be 'refuse', 'allow' or (input_usd_per_mtok, output_usd_per_mtok)"
    )


def _fallback(price: tuple[Decimal, Decimal], input_tokens: int, output_tokens: int) -> Decimal:
    return (price[0] * input_tokens + price[1] * output_tokens) / _MTOK


class _RateCache:
    """Pre-flight prices without a catalog lookup per call.

    Per (model, provider) the input and output prices per token are taken from
    :func:`tokentrail.pricing.cost` once a minute; when the model has long-context tiers
    (the cost of a huge prompt is not proportional) every estimate is priced exactly.
    """

    TTL = 60.0
    PROBE = 1000
    BIG = 2_000_000

    def __init__(self) -> None:
        # (model, provider, variant) -> (when probed, (input, output) per token or None)
        self._rates: dict[
            tuple[str, str | None, str | None], tuple[float, tuple[Decimal, Decimal] | None]
        ] = {}

    def price(
        self,
        model: str | None,
        provider: str | None,
        prompt: int,
        output: int,
        variant: str | None = None,
    ) -> Decimal | None:
        if not model:
            return None
        key = (model, provider, variant)
        entry = self._rates.get(key)
        if entry is None or time.monotonic() - entry[0] > self.TTL:
            entry = (time.monotonic(), self._probe(model, provider, variant))
            self._rates[key] = entry
        rates = entry[1]
        if rates is None:  # tiered or unknown: exact
            return _price(model, provider, prompt, output, variant)
        return rates[0] * prompt + rates[1] * output

    def _probe(
        self, model: str, provider: str | None, variant: str | None
    ) -> tuple[Decimal, Decimal] | None:
        small_in = _price(model, provider, self.PROBE, 0, variant)
        small_out = _price(model, provider, 0, self.PROBE, variant)
        big_in = _price(model, provider, self.BIG, 0, variant)
        if small_in is None or small_out is None or big_in is None:
            return None
        if big_in * self.PROBE != small_in * self.BIG:
            return None  # long-context tiers: not proportional
        return (small_in / self.PROBE, small_out / self.PROBE)


def _price(
    model: str | None,
    provider: str | None,
    prompt: int,
    output: int,
    variant: str | None = None,
) -> Decimal | None:
    if not model:
        return None
    try:
        from ..pricing import cost
        from ..usage import Usage

        priced = cost(
            model,
            provider=provider,
            usage=Usage(input_tokens=prompt, output_tokens=output),
            variant=variant,
        )
    except Exception:
        logger.warning("tokentrail: could not price a pre-flight estimate", exc_info=True)
        return None
    return None if priced is None else priced.total


def _retry_after(status: BudgetStatus | None, now: datetime) -> float | None:
    if status is None or status.window_end is None:
        return None
    return max(0.0, (status.window_end - now).total_seconds())


def _fmt(value: Amount, unit: str) -> str:
    return money(value) if unit == "usd" else f"{value:,} tokens"


def _num(value: Amount, unit: str) -> str:
    return money(value) if unit == "usd" else f"{int(value):,}"
