"""``BudgetGuard``: reserve a call's worst case before it leaves, settle the real cost after.

Pre-flight (:meth:`BudgetGuard.reserve`): the call's worst case is estimated
(:mod:`.worst_case`: the prompt counted, the reply bounded by ``max_tokens`` or the model's
maximum output from the catalog, priced) and reserved in the shared ledger (:mod:`.ledger`)
against every budget that applies, in one transaction: either every budget takes the
reservation or none does and :class:`~tokentrail.BudgetExceededError` is raised. Every
process on the same database sees every other's reservations and spend at once, so
parallel calls and processes cannot together overshoot a limit. At capture
(:meth:`settle`) the holds are swapped for the real cost; errors and cancellations keep
whatever the provider did bill. A hold never settled expires after
``GuardConfig.reservation_ttl`` seconds (or when its process dies).

Policies per budget: ``unpriced`` for models without a price (``"refuse"``, ``"allow"``, or
a fallback price per 1M tokens) and ``on_error`` for when the guard cannot decide (the
ledger cannot be reached in ``ledger_timeout`` seconds, the call cannot be estimated):
``"closed"`` (default) refuses the call naming the cause, ``"open"`` lets it through with
one warning. Calls of free models never count against USD budgets.
"""

from __future__ import annotations

import itertools
import logging
import os
import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from ..context import Attribution, CallContext
from ..errors import BudgetExceededError
from . import matching
from .accounting import Accounting, Charge
from .definition import Budget, parse_limit, parse_on_error, parse_unpriced, parse_warn_at
from .ledger import Ledger, LedgerError
from .ledgers import open_ledger
from .matching import Applicable, Spans
from .request import Estimate, GuardConfig, PreflightRequest
from .reservation import Reservation
from .scopes import NOT_APPLICABLE, parse_scope
from .status import BudgetStatus, CheckResult, check_result
from .windows import parse_window, zone
from .worst_case import RateCache, estimate_call

if TYPE_CHECKING:
    from ..records import UsageRecord

__all__ = ["BudgetGuard", "Decision"]

logger = logging.getLogger("tokentrail")


class Decision(NamedTuple):
    """What the guard decided for one call: held, refused, or let through undecided."""

    reservation: Reservation | None
    statuses: list[BudgetStatus]
    error: BudgetExceededError | None
    estimate: Estimate | None


class BudgetGuard:
    """Every budget of one tracker and the shared ledger that makes them atomic."""

    def __init__(
        self,
        tracker: Any,
        *,
        config: GuardConfig | None = None,
        clock: Callable[[], datetime] | None = None,
        ledger: Ledger | None = None,
        loader: object = None,
    ) -> None:
        # ``loader`` (reading spend from the store per process) is gone: spend lives in the
        # shared ledger. Accepted and ignored until callers of the old signature move on.
        del loader
        self._tracker = tracker
        self.config = config or GuardConfig()
        path = getattr(tracker, "path", None)
        if ledger is None:  # SQLite beside a DuckDB file, tables in a PostgreSQL store
            ledger = open_ledger(path, timeout=self.config.ledger_timeout)
        self._now = clock or (lambda: datetime.now(timezone.utc))
        self._budgets: tuple[Budget, ...] = ()
        self._ids = itertools.count(1)
        self._instance = f"{os.getpid()}.{secrets.token_hex(4)}"
        self._spans = Spans()
        self._rates = RateCache()
        self._books = Accounting(ledger, self.config, path, self._now, self._spans)
        self._persist_warned = False

    @property
    def ledger(self) -> Ledger:
        """The shared ledger this guard reserves in."""
        return self._books.ledger

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
        on_error: Literal["closed", "open"] = "closed",
        name: str | None = None,
        **settings: Any,
    ) -> Budget | tuple[Budget, Budget]:
        """Add a budget: ``usd`` and/or ``tokens`` per window ``per`` for each ``scope`` key.

        ``per``: ``call``, ``run``, ``session``, ``hour``, ``day``, ``week``, ``month``,
        ``total`` or a rolling length (``"24h"``, ``"7d"``). ``scope``: ``global``, ``user``,
        ``session``, ``operation``, ``model``, ``tag:<name>``. ``user_id`` (or ``key``) makes
        it an override for one user (or one scope value). ``warn_at``: fractions at which a
        :class:`~tokentrail.BudgetWarning` is emitted once per window. ``tz``: the time zone
        calendar windows are cut in. ``unpriced`` and ``on_error``: see the module docs.
        Other keywords set :class:`GuardConfig` fields. Returns the budget (a pair when
        both units are given).
        """
        for option, value in settings.items():
            if not hasattr(self.config, option):
                raise TypeError(f"unknown budget option {option!r}")
            setattr(self.config, option, value)
        self._books.ledger.timeout = self.config.ledger_timeout
        self._books.ledger.sweep_every = min(1.0, self.config.reservation_ttl / 2)
        if usd is None and tokens is None:
            if settings:
                return ()  # type: ignore[return-value]
            raise ValueError("a budget needs usd=... or tokens=...")
        window, scope_ = parse_window(per), parse_scope(scope)
        if user_id is not None:
            if scope_.kind != "user":
                raise ValueError("user_id= overrides a scope='user' budget")
            key = str(user_id)
        if key is not None and scope_.kind in ("global", "tag"):
            raise ValueError(f"scope {scope_.name!r} has no per-key overrides")
        made = [
            Budget(
                id=next(self._ids),
                unit=unit,  # type: ignore[arg-type]
                limit=parse_limit(raw, unit),
                window=window,
                scope=scope_,
                key=key,
                warn_at=parse_warn_at(warn_at),
                on_warn=on_warn,
                tz=zone(tz),
                unpriced=parse_unpriced(unpriced),
                name=name,
                on_error=parse_on_error(on_error),
            )
            for unit, raw in (("usd", usd), ("tokens", tokens))
            if raw is not None
        ]
        self._budgets = (*self._budgets, *made)
        if self.config.persist:
            self._persist()
        return made[0] if len(made) == 1 else (made[0], made[1])

    def remove(self, budget: Budget) -> None:
        """Stop enforcing ``budget`` (its spend stays in the ledger and the store)."""
        self._budgets = tuple(b for b in self._budgets if b.id != budget.id)
        if self.config.persist:
            self._persist(removed=(budget,))

    def _persist(self, removed: Sequence[Budget] = ()) -> None:
        path = getattr(self._tracker, "path", None)
        if path is None:
            return
        try:
            from .persist import save_budgets

            save_budgets(path, self._budgets, removed=removed)
        except Exception as exc:
            # Once per guard (a server that is down would otherwise warn on every budget());
            # the budgets are enforced all the same, only `budget status` does not list them.
            if not self._persist_warned:
                self._persist_warned = True
                logger.warning(
                    "tokentrail: could not save budget definitions for `tokentrail budget "
                    "status` (%s); they are enforced all the same",
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                )
            else:
                logger.debug("tokentrail: could not save budget definitions", exc_info=True)

    # ------------------------------------------------------------------ reserve
    def estimate(self, request: PreflightRequest) -> Estimate:
        """The worst case of a call: counted prompt + reply bound, priced."""
        # The tracker-wide price variant (batch, flex, priority) prices the reservation too.
        variant = getattr(self._tracker, "_price_variant", None)
        return estimate_call(request, self.config, self._rates, variant)

    def reserve(self, request: PreflightRequest) -> Reservation | None:
        """Reserve a call's worst case against every applicable budget, or raise.

        Returns ``None`` when no budget applies (or an ``on_error="open"`` budget let the
        call through undecided). Raises :class:`~tokentrail.BudgetExceededError` naming the
        tightest budget that refuses, or the cause when a closed budget cannot decide.
        """
        if not self._budgets:
            return None
        ctx = request.context if request.context is not None else self._context()
        now = self._now()
        matched = self._match(ctx.attribution, request.model, ctx, now)
        if not matched:
            return None
        decision = self._decide(matched, request, now, commit=True)
        if decision.error is not None:
            raise _explained(decision.error, decision.estimate, request)
        return decision.reservation

    def _match(
        self, attribution: Attribution, model: str | None, ctx: CallContext | None, now: datetime
    ) -> list[Applicable]:
        return matching.applicable(self._budgets, attribution, model, ctx, now, self._spans)

    def _decide(
        self, matched: list[Applicable], request: PreflightRequest, now: datetime, *, commit: bool
    ) -> Decision:
        """Estimate the call and, in one ledger transaction, check (and hold) every budget."""
        try:
            estimate = self.estimate(request)
        except Exception as exc:
            return self._undecided(matched, f"the call could not be estimated ({exc!r})", None)
        charges = [self._books.charge(b, k, w, estimate, now) for b, k, w in matched]
        ident = f"{self._instance}.{next(self._ids)}"
        try:
            statuses, error, held = self._books.hold(
                ident, charges, request.model, now, commit=commit
            )
        except LedgerError as exc:
            return self._undecided(
                matched,
                f"the budget ledger could not be reached ({exc})",
                estimate,
            )
        if error is not None or not commit:
            return Decision(None, statuses, error, estimate)
        reservation = Reservation(
            id=next(self._ids),
            estimate=estimate,
            entries=[(c.budget, c.slot, c.amount or 0) for c in held],
            model=request.model,
            provider=request.provider,
            ledger_id=ident,
        )
        return Decision(reservation, statuses, None, estimate)

    def _undecided(
        self, matched: list[Applicable], cause: str, estimate: Estimate | None
    ) -> Decision:
        """The guard cannot decide: a closed budget refuses, open ones let the call pass."""
        closed = next((b for b, _, _ in matched if b.on_error == "closed"), None)
        if closed is None:
            self._books.warn_open(cause)
            return Decision(None, [], None, estimate)
        key = next(k for b, k, _ in matched if b is closed)
        error = BudgetExceededError(
            scope=closed.scope.name,
            key=key,
            window=closed.window.name,
            limit=closed.limit,
            spent=Decimal(0) if closed.unit == "usd" else 0,
            reserved=Decimal(0) if closed.unit == "usd" else 0,
            estimate=Decimal(0) if closed.unit == "usd" else 0,
            unit=closed.unit,
            cause=cause,
        )
        return Decision(None, [], error, estimate)

    # ------------------------------------------------------------------ settle / release
    def settle(self, reservation: Reservation | None, record: UsageRecord) -> None:
        """Swap a reservation for the call's real cost (and count unreserved calls).

        Called by ``Tracker.capture`` for every record. An error or cancellation releases
        the reservation; whatever the record says was used still counts. Idempotent.
        """
        if reservation is None:
            if self._budgets:
                self._settle_unreserved(record)
            return
        if reservation.done:
            return
        reservation.done = True
        charges = [
            Charge(budget, slot, self._books.actual(budget, record, reservation))
            for budget, slot, _ in reservation.entries
            if budget.window.kind != "call"
        ]
        self._books.settle(reservation.ledger_id, charges)

    def _settle_unreserved(self, record: UsageRecord) -> None:
        attribution = Attribution(
            user_id=record.user_id,
            session_id=record.session_id,
            operation=record.operation,
            tags=tuple(record.tags),
        )
        when = record.ts or self._now()
        charges = [
            Charge(
                budget,
                self._books.slot(budget, key, wid, when),
                self._books.actual(budget, record, None),
                key,
            )
            for budget, key, wid in self._match(attribution, record.model, None, when)
            if budget.window.kind not in ("call", "run")  # a run's spend is its calls'
        ]
        self._books.settle(None, charges)

    def release(self, reservation: Reservation | None) -> None:
        """Give a reservation back without spending (the call never went out)."""
        if reservation is None or reservation.done:
            return
        reservation.done = True
        slots = [slot for budget, slot, _ in reservation.entries if budget.window.kind != "call"]
        self._books.release(reservation.ledger_id, slots)

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
        matched = self._match(ctx.attribution, model, ctx, now)
        if not matched:
            return CheckResult(allowed=True, remaining=None, unit=None, estimate=None)
        decision = self._decide(matched, request, now, commit=False)
        return check_result(decision.statuses, decision.error, decision.estimate, now)

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
        scopes list every key any process has used in the current window (or the one
        named by the arguments). Spend only the store knows is taken in first.
        """
        now = self._now()
        wanted = Attribution.of(user_id, session_id, operation, tags)
        out: list[BudgetStatus] = []
        for budget in self._budgets:
            if budget.window.kind in ("call", "run", "session"):
                continue
            wid = matching.window_id(budget.window, wanted, None, now, budget.tz, self._spans)
            if wid is None:
                continue
            key: Any = budget.key
            if budget.scope.kind != "global" and key is None:
                key = budget.scope.key_for(wanted, model)
                if key is NOT_APPLICABLE:
                    continue
                if key is None:
                    out.extend(self._books.statuses_of_window(budget, wid, now, self._budgets))
                    continue
            out.append(self._books.status(budget, key, wid, now))
        return out

    def _context(self, explicit: Attribution | None = None) -> CallContext:
        fn = getattr(self._tracker, "call_context", None)
        if fn is None:
            return CallContext(attribution=explicit or Attribution())
        ctx: CallContext = fn(explicit)
        return ctx

    def reset(self) -> None:
        """Forget what this process remembers of the store (re-read on next use)."""
        self._books.forget()

    def close(self) -> None:
        """Close the ledger connection of this process."""
        self._books.ledger.close()


def _explained(
    error: BudgetExceededError, estimate: Estimate | None, request: PreflightRequest
) -> BudgetExceededError:
    """The refusal with the worst case spelled out: prompt tokens + the reply's bound."""
    if estimate is None:
        return error
    bound = "max_tokens" if request.max_tokens is not None else "the model's maximum output"
    prompt = "prompt tokens" if estimate.exact else "prompt tokens (estimated)"
    basis = (
        f"{estimate.input_tokens:,} {prompt} + {estimate.output_tokens:,} reply tokens ({bound})"
    )
    if request.max_tokens is None:
        basis += "; pass max_tokens to reserve less"
    return error.explain(basis=basis)
