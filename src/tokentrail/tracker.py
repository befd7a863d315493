"""``Tracker``: the one object users hold.

It carries default attribution, prices each captured call, feeds the budget guard, counts
calls in active ``track()`` blocks and hands records to the store, whose background
writer puts them in DuckDB. Capturing never raises into user code; only the budget guard
raises, on purpose, before a request leaves.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .blocks import run_block
from .context import Attribution, CallContext, Run, active_runs
from .errors import BudgetExceededError
from .manual import UNREADABLE_USAGE, manual_record, set_attribution
from .pricing import default_pricer
from .records import Status, UsageRecord, new_id
from .usage import Usage

if TYPE_CHECKING:
    from .analytics import Analytics
    from .budget import BudgetGuard, BudgetStatus, CheckResult, PreflightRequest, Reservation
    from .integrations.langchain import TokentrailCallbackHandler
    from .integrations.llamaindex import LlamaIndexInstrumentation
    from .live import LiveCounter
    from .otel import Telemetry
    from .pricing.types import Cost
    from .store import UsageStore
    from .store.paths import Database
    from .store.segments import Durability

__all__ = ["Tracker"]

logger = logging.getLogger("tokentrail")

Listener = Callable[[UsageRecord], None]
#: ``on_chunk(run_id, text, model)``: a piece of text a call in flight streamed.
ChunkListener = Callable[[str, str, "str | None"], None]


class Tracker:
    """Capture, price and store the token usage of LLM calls.

    Example::

        tracker = tokentrail.Tracker()                 # default database, see `tokentrail path`
        handler = tracker.langchain(user_id="u1")      # a LangChain callback handler
        chain.invoke(inputs, config={"callbacks": [handler]})
        with tracker.track(operation="report") as run:
            chain.invoke(inputs)                       # no callbacks needed inside the block
        print(run.summary())
        tracker.close()

    ``path`` is the DuckDB file (default: ``TOKENTRAIL_DB`` or the user data directory), or
    a PostgreSQL URL (``postgresql://user@host:5432/db``) shared by a team's processes.
    ``user_id``, ``session_id``, ``operation``, ``tags`` and ``metadata`` are defaults for
    every call; ``price_variant`` (``batch``, ``flex``, ``priority``...) applies to every call.
    ``durability``: when a record is on the disk itself, not only in the page cache (which
    survives the process being killed): ``"interval"`` (default) within 100 ms, synced in
    groups on a background thread, the window a power cut can lose; ``"call"`` before
    ``record()`` returns; ``"os"`` when the kernel writes it back.
    ``otel=True`` (or ``TOKENTRAIL_OTEL=1``) also makes every call an OpenTelemetry GenAI
    span and metrics for the app's global providers (see :mod:`tokentrail.otel`).
    ``show_usage=True`` (or ``TOKENTRAIL_SHOW_USAGE=1``) prints the "Session complete"
    block of this tracker's calls to stderr when it closes or the program ends.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        user_id: str | None = None,
        session_id: str | None = None,
        operation: str | None = None,
        tags: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        price_variant: str | None = None,
        pricing: str | os.PathLike[str] | None = None,
        durability: Durability = "interval",
        otel: bool | None = None,
        show_usage: bool | None = None,
    ) -> None:
        from .store import UsageStore
        from .store.paths import resolve_db

        self._path = resolve_db(path)  # a DuckDB file, or a postgresql:// URL
        self._defaults = Attribution.of(user_id, session_id, operation, tags, metadata)
        self._default_context = CallContext(attribution=self._defaults, runs=())
        self._price_variant = price_variant
        self._store: UsageStore = UsageStore(self._path, durability=durability)
        self._guard: BudgetGuard | None = None
        self._listeners: list[Listener] = []
        self._chunk_listeners: list[ChunkListener] = []
        self._lock = threading.Lock()
        self._closed = False
        self._analytics: Analytics | None = None
        self._otel: Telemetry | None = None
        #: TOKENTRAIL_DISABLED=1 turns collection off without a code change: calls are
        #: neither stored nor guarded (one log line says so).
        self._disabled = _env_flag("TOKENTRAIL_DISABLED")
        if self._disabled:
            logger.info("tokentrail: TOKENTRAIL_DISABLED is set: calls are not recorded")
        self._usage_run: Run | None = None
        if show_usage if show_usage is not None else _env_flag("TOKENTRAIL_SHOW_USAGE"):
            self._usage_run = Run(self, Attribution(), new_id())
            self.subscribe(self._usage_run.add)
            atexit.register(self._show_usage)
        if otel if otel is not None else _env_flag("TOKENTRAIL_OTEL"):
            from .otel import Telemetry  # only when on: no opentelemetry import otherwise

            self._otel = Telemetry()
            self.subscribe(self._otel.record)
        if pricing is not None:
            from . import pricing as pricing_module

            pricing_module.load_file(pricing)

    # ------------------------------------------------------------------ properties
    @property
    def path(self) -> Database:
        """The DuckDB file (or the PostgreSQL database) this tracker writes to."""
        return self._path

    @property
    def store(self) -> UsageStore:
        """The store behind this tracker (batched writer, spool, DuckDB file)."""
        return self._store

    @property
    def defaults(self) -> Attribution:
        """Attribution applied to every call unless something more specific sets it."""
        return self._defaults

    @property
    def analytics(self) -> Analytics:
        """Queries over this tracker's database (flushes pending records first)."""
        if self._analytics is None:
            from .analytics import Analytics

            self._analytics = Analytics(self._path, before_query=self.flush)
        return self._analytics

    # ------------------------------------------------------------------ capture path
    def call_context(self, explicit: Attribution | None = None) -> CallContext:
        """Snapshot the attribution and active runs for a call starting now.

        Precedence: ``explicit`` (per-call metadata and handler arguments) > innermost
        ``track()`` block > outer blocks > this tracker's defaults.
        """
        active = active_runs()
        if not active and explicit is None:
            return self._default_context  # the common case, kept off the hot path
        merged = self._defaults
        runs = tuple(r for r in active if r.tracker is self)
        for run in runs:
            merged = run.attribution.over(merged)
        if explicit is not None:
            merged = explicit.over(merged)
        return CallContext(attribution=merged, runs=runs)

    def capture(
        self,
        record: UsageRecord,
        *,
        context: CallContext | None = None,
        reservation: Reservation | None = None,
    ) -> UsageRecord:
        """Take one finished call: attribute, price, settle its budget reservation, store.

        Used by the integrations; never raises. ``context`` is the snapshot taken when the
        call started (taken now when ``None``); attribution already set on the record wins.
        """
        if self._disabled:
            return record
        try:
            ctx = context if context is not None else self.call_context()
            _apply_attribution(record, ctx.attribution)
            if record.cost is None:
                record.cost = self._price(record) or self._price_as_reserved(record, reservation)
            for run in ctx.runs:
                run.add(record)
        except Exception:  # capture must never break the user's call
            logger.exception("tokentrail: could not process a captured call; storing it as is")
        guard = self._guard
        if guard is not None:
            try:
                guard.settle(reservation, record)
            except Exception:
                logger.exception("tokentrail: could not settle a budget reservation")
        try:
            self._store.submit(record)
        except Exception:  # the store keeps its own promise not to raise; belt and braces
            logger.exception("tokentrail: could not store a captured call")
        for listener in self._listeners:
            try:
                listener(record)
            except Exception:
                logger.exception("tokentrail: a usage listener failed")
        return record

    def _price_as_reserved(
        self, record: UsageRecord, reservation: Reservation | None
    ) -> Cost | None:
        """A response naming a model the catalog does not know is priced as the model the
        call was reserved for (the budget counted that price; the row must not say NULL)."""
        if reservation is None or reservation.model is None or reservation.model == record.model:
            return None
        return default_pricer().cost(
            reservation.model,
            provider=reservation.provider or record.provider,
            at=record.ts,
            usage=record.usage,
            variant=record.price_variant or self._price_variant,
        )

    def _price(self, record: UsageRecord) -> Cost | None:
        pricer = default_pricer()
        if record.cache_hit:  # no request was sent
            return pricer.zero_cost(record.model, provider=record.provider)
        if record.model is None and record.reported_cost is None:
            return None
        if UNREADABLE_USAGE in record.usage.issues:  # zero counts would claim $0
            return None
        return pricer.cost(
            record.model,
            provider=record.provider,
            at=record.ts,
            usage=record.usage,
            variant=record.price_variant or self._price_variant,
            reported_cost=record.reported_cost,
        )

    def record(
        self,
        *,
        model: str | None,
        usage: Usage | Mapping[str, Any] | Any = None,
        provider: str | None = None,
        user_id: str | None = None,
        session_id: str | None = None,
        operation: str | None = None,
        tags: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        latency_ms: float | None = None,
        status: Status = "ok",
        error_type: str | None = None,
        request_id: str | None = None,
        ts: datetime | str | None = None,
        streamed: bool = False,
        estimated: bool = False,
        cost: Cost | None = None,
        reported_cost: Decimal | float | str | None = None,
        price_variant: str | None = None,
        run_id: str | None = None,
        parent_run_id: str | None = None,
        trace_id: str | None = None,
    ) -> UsageRecord:
        """Record a call made outside the frameworks; returns the record. Never raises.

        ``usage`` is a :class:`~tokentrail.Usage`, a mapping of its field names (bad
        values are fixed and flagged, see :meth:`Usage.from_counts`), or a provider's own
        usage: an OpenAI or Anthropic SDK usage object (or its ``model_dump()``), a
        LangChain ``usage_metadata`` dict. Usage it cannot read logs one warning and
        stores the call with an unknown cost (zero counts would claim it cost $0). The provider is
        inferred from the model name when not given.

        ``ts`` is a :class:`~datetime.datetime` (naive means UTC) or ISO 8601 text; one it
        cannot use logs a warning and the call is stored at the current time.
        ``reported_cost`` (the provider's own figure, USD) that is not a non-negative number
        logs a warning and the call is priced from the catalog.
        """
        rec = manual_record(
            model,
            usage,
            provider,
            estimated,
            latency_ms=latency_ms,
            status=status,
            error_type=error_type,
            request_id=request_id,
            ts=ts,
            streamed=streamed,
            cost=cost,
            reported_cost=reported_cost,
            price_variant=price_variant,
            run_id=run_id,
            parent_run_id=parent_run_id,
            trace_id=trace_id,
        )
        # Explicit arguments go straight onto the record: capture() fills only what is
        # still unset from the surrounding blocks and defaults, so they win.
        set_attribution(rec, user_id, session_id, operation, tags, metadata)
        try:
            context = self.call_context()
        except Exception:
            context = self._default_context
        return self.capture(rec, context=context)

    def subscribe(
        self, listener: Listener, on_chunk: ChunkListener | None = None
    ) -> Callable[[], None]:
        """Call ``listener(record)`` for every captured call; returns an unsubscribe function.

        ``on_chunk(run_id, text, model)``, if given, is called for every piece of text a
        streamed call produces while it is in flight (the integrations report them only
        while someone listens, see :attr:`watching_streams`); its record, with the same
        ``run_id``, follows at the end.
        """
        with self._lock:
            self._listeners = [*self._listeners, listener]
            if on_chunk is not None:
                self._chunk_listeners = [*self._chunk_listeners, on_chunk]

        def unsubscribe() -> None:
            with self._lock:
                self._listeners = [f for f in self._listeners if f is not listener]
                self._chunk_listeners = [f for f in self._chunk_listeners if f is not on_chunk]

        return unsubscribe

    @property
    def watching_streams(self) -> bool:
        """True while a subscriber follows streamed calls piece by piece (a live counter)."""
        return bool(self._chunk_listeners) and not self._disabled

    def streamed(self, run_id: str, text: str, model: str | None) -> None:
        """A call in flight streamed ``text`` (reported by the integrations). Never raises."""
        for on_chunk in self._chunk_listeners:
            try:
                on_chunk(run_id, text, model)
            except Exception:
                logger.exception("tokentrail: a stream listener failed")

    def live(self, **kwargs: Any) -> LiveCounter:
        """Show a running ``Tokens: 12,450 ↑ | Cost: $0.23`` counter of the calls from now on.

        A refreshed stderr line in a terminal, an updating output in a notebook; returns
        the started :class:`~tokentrail.live.LiveCounter` (``.stop()`` it, or use ``with``).
        Keyword arguments go to ``LiveCounter`` (``mode``, ``stream``, ``interval``).
        """
        from .live import LiveCounter

        return LiveCounter(self, **kwargs).start()

    # ------------------------------------------------------------------ integrations
    def langchain(
        self,
        user_id: str | None = None,
        session_id: str | None = None,
        operation: str | None = None,
        tags: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> TokentrailCallbackHandler:
        """A LangChain callback handler that records every model call it sees."""
        from .integrations.langchain import TokentrailCallbackHandler

        attribution = Attribution.of(user_id, session_id, operation, tags, metadata)
        return TokentrailCallbackHandler(self, attribution)

    def llamaindex(
        self,
        user_id: str | None = None,
        session_id: str | None = None,
        operation: str | None = None,
        tags: Sequence[str] | None = None,
    ) -> LlamaIndexInstrumentation:
        """Instrument LlamaIndex globally; returns a handle with ``detach()``."""
        from .integrations.llamaindex import LlamaIndexInstrumentation

        attribution = Attribution.of(user_id, session_id, operation, tags)
        return LlamaIndexInstrumentation.attach(self, attribution)

    @contextlib.contextmanager
    def track(
        self,
        user_id: str | None = None,
        session_id: str | None = None,
        operation: str | None = None,
        tags: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Iterator[Run]:
        """Attribute and count every LangChain/LlamaIndex call made inside the block.

        ``with tracker.track(user_id="u1") as run: ...`` then ``run.summary()``. Blocks nest.
        """
        run = Run(self, Attribution.of(user_id, session_id, operation, tags, metadata), new_id())
        with run_block(self, run):
            yield run

    # ------------------------------------------------------------------ budget guard
    def budget(self, usd: float | Decimal | str | None = None, **kwargs: Any) -> Any:
        """Add a budget; calls that could exceed it raise ``BudgetExceededError`` up front.

        See :class:`tokentrail.budget.BudgetGuard.add` for the arguments (``tokens``,
        ``per``, ``scope``, ``warn_at``, ``on_warn``, ``on_error``, ``tz``, ``user_id``...).
        Every process on the same database shares the budget through a ledger beside it
        (``<db>.ledger.sqlite``): a reservation is seen by all of them at once.
        ``on_error="closed"`` (the default) refuses a call when the ledger cannot be reached
        or the call cannot be estimated; ``"open"`` lets it through with one warning.
        """
        from .budget import BudgetGuard

        with self._lock:
            if self._guard is None:
                self._guard = BudgetGuard(self)
        if self._otel is not None:  # a crossed threshold becomes an event on the call's span
            kwargs["on_warn"] = self._otel.on_warn(kwargs.get("on_warn"))
        return self._guard.add(usd=usd, **kwargs)

    @property
    def guarded(self) -> bool:
        """True when any budget is set (integrations skip the pre-flight otherwise)."""
        return self._guard is not None and not self._disabled

    def preflight(self, request: PreflightRequest) -> Reservation | None:
        """Reserve a call's worst-case cost against every budget, or raise.

        Used by the integrations at model start; ``None`` when no budget applies. Raises
        :class:`~tokentrail.BudgetExceededError` when the call could exceed a budget.
        """
        guard = self._guard
        if guard is None or self._disabled:
            return None
        try:
            return guard.reserve(request)
        except BudgetExceededError as exc:
            if self._otel is not None:
                self._otel.refused(request, exc)
            raise

    def release(self, reservation: Reservation | None) -> None:
        """Give back a reservation whose call failed before sending or was abandoned.

        Never raises; ``None`` (no reservation) is a no-op.
        """
        guard = self._guard
        if guard is None or reservation is None:
            return
        try:
            guard.release(reservation)
        except Exception:
            logger.exception("tokentrail: could not release a budget reservation")

    def check(self, **kwargs: Any) -> CheckResult:
        """Would a call fit the budgets? A status instead of an exception (for HTTP 429s)."""
        from .budget import BudgetGuard

        with self._lock:
            if self._guard is None:
                self._guard = BudgetGuard(self)
        return self._guard.check(**kwargs)

    def budget_status(self) -> list[BudgetStatus]:
        """Spend, reservations, limit and percent of every budget window in force."""
        return [] if self._guard is None else self._guard.status()

    def reprice(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        all_rows: bool = False,
        dry_run: bool = False,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        """Price stored rows again with today's catalog and registered prices.

        Flushes first, then runs :func:`tokentrail.store.reprice.reprice` on this
        tracker's database (DuckDB or PostgreSQL): by default the rows whose cost is
        unknown, with ``all_rows`` every row in ``[since, until)``. ``dry_run`` changes
        nothing. Returns ``rows``, ``changed``, ``still_unpriced`` and per model the
        ``before`` / ``after`` totals (USD); old figures are kept in ``tokentrail_repriced``.
        """
        from .store.reprice import reprice

        self.flush(timeout)
        return reprice(
            self._path,
            since=since,
            until=until,
            all_rows=all_rows,
            dry_run=dry_run,
            timeout=timeout,
        )

    # ------------------------------------------------------------------ lifecycle
    def flush(self, timeout: float | None = 30.0) -> bool:
        """Write every captured record to the database; True when all were written.

        With ``otel=True`` it also waits until every call's span and metrics are made.
        """
        stored = self._store.flush(timeout)
        if self._otel is not None:
            return self._otel.flush(timeout) and stored
        return stored

    def close(self) -> None:
        """Flush and release the database file. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._show_usage()
        self._store.close()
        if self._guard is not None:
            self._guard.close()  # the ledger's connection
        if self._otel is not None:
            self._otel.close()

    def _show_usage(self) -> None:
        """Print the session block once (``show_usage``): at close or at exit."""
        run, self._usage_run = self._usage_run, None
        if run is None:
            return
        run.close()
        print(run.summary().block(), file=sys.stderr)

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Tracker(path={str(self._path)!r})"

    def _repr_html_(self) -> str:
        from .display import tracker_html

        return tracker_html(self)


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _apply_attribution(record: UsageRecord, attribution: Attribution) -> None:
    if record.user_id is None:
        record.user_id = attribution.user_id
    if record.session_id is None:
        record.session_id = attribution.session_id
    if record.operation is None:
        record.operation = attribution.operation
    if attribution.tags:
        record.tags = attribution.tags + tuple(t for t in record.tags if t not in attribution.tags)
    if attribution.metadata:
        record.metadata = {**attribution.metadata, **record.metadata}
