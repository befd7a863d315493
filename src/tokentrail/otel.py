"""OpenTelemetry: every captured call as a GenAI span and metrics, for the app's own stack.

Switched on by ``Tracker(otel=True)`` or ``TOKENTRAIL_OTEL=1``; off by default, and then
this module (and ``opentelemetry``) is never imported. It needs ``opentelemetry-api``
only (``pip install 'tokentrail[otel]'``) and uses the *global* ``TracerProvider`` and
``MeterProvider``: whatever exporter the app configured (OTLP to a Collector, Datadog,
Honeycomb, Jaeger...) receives the data, under the instrumentation scope ``tokentrail``.
Without an SDK configured the API's no-op providers make the spans and measurements cost
little (they are still made, on the background thread: a provider may be set later).

* **A span per call**, made when the call is captured (``Tracker.capture``) from its
  record: named ``{gen_ai.operation.name} {gen_ai.request.model}``, kind ``CLIENT``,
  start = the call's start (``ts``), end = start + latency, status ``ERROR`` for a failed
  call. Its parent is the span current when the call is captured. LangChain and LlamaIndex
  run their end callbacks in the caller's context (same thread, same task), so the span
  nests under the app's span around the call (a web request, a job); a call captured
  elsewhere (a ``tracker.record()`` from a worker thread) nests under that thread's
  current span. Attributes: see :mod:`tokentrail.otel_attributes`. Some provider SDKs
  emit GenAI spans of their own: tokentrail neither reads nor counts them, so a trace
  may show both, each counted once by its own scope.
* **Metrics**: ``gen_ai.client.token.usage`` (histogram, ``{token}``, by
  ``gen_ai.token.type`` input/output, not for failed calls),
  ``gen_ai.client.operation.duration`` (histogram, s, with ``error.type`` on failures),
  ``tokentrail.cost`` (counter, USD) and ``tokentrail.budget.refusals`` (counter,
  ``{call}``), all by operation, provider and model only.
* **Budgets**: a refused call has no record and no request left the process, so it is a
  short ``INTERNAL`` span ``tokentrail.budget.refused`` (status ``ERROR``, ``error.type``
  ``BudgetExceededError``, the call's operation/provider/model) under the current span,
  with one ``tokentrail.budget.refused`` event holding the budget's figures. It is not a
  GenAI client span, so dashboards counting calls do not count it. A ``warn_at``
  threshold a call crosses is a ``tokentrail.budget.warning`` event on that call's span.

Off the call's path: the caller only queues the record with its current context (the
parent); one background thread makes the spans and measurements (the SDK's attribute
checks and aggregation cost tens of microseconds a call), and the app's span processor
exports them. ``tracker.flush()`` and ``tracker.close()`` wait for that thread, and it is
drained at interpreter exit before the SDK's own exit hook exports.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from opentelemetry import context, metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from .otel_attributes import (
    budget_status_attributes,
    call_attributes,
    metric_attributes,
    refusal_attributes,
    refusal_request_attributes,
    request_model,
    span_name,
)
from .otel_queue import Background
from .records import epoch_micros

if TYPE_CHECKING:
    from opentelemetry.context import Context

    from .budget import BudgetStatus, PreflightRequest
    from .errors import BudgetExceededError
    from .records import UsageRecord

    #: A captured call on its way to the background thread: record, parent context, warnings.
    _Call = tuple[UsageRecord, Context, list[BudgetStatus] | None]

__all__ = ["SCOPE", "Telemetry"]

logger = logging.getLogger("tokentrail")

#: The instrumentation scope of every span and instrument.
SCOPE = "tokentrail"
#: The conventions' advisory bucket boundaries.
TOKEN_BUCKETS = tuple(float(4**i) for i in range(14))  # 1, 4, 16 ... 67,108,864
DURATION_BUCKETS = tuple(0.01 * 2**i for i in range(14))  # 0.01, 0.02 ... 81.92 s
_REFUSED = "tokentrail.budget.refused"
_WARNING = "tokentrail.budget.warning"


class Telemetry:
    """The tracer and instruments of one tracker; see the module docs.

    Made by a tracker with ``otel=True``, which subscribes :meth:`record` to every
    captured call. Its methods never raise.
    """

    def __init__(self) -> None:
        version = _version()
        self._tracer = trace.get_tracer(SCOPE, version)
        meter = metrics.get_meter(SCOPE, version)
        self._tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self._duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._cost = meter.create_counter(
            "tokentrail.cost", unit="USD", description="Cost of the model calls, in US dollars."
        )
        self._refusals = meter.create_counter(
            "tokentrail.budget.refusals",
            unit="{call}",
            description="Model calls a budget refused before they were sent.",
        )
        # Budget warnings fired while a call is settled, before its span exists: the
        # capture that settles it queues the span next, on the same thread.
        self._pending = threading.local()
        self._background: Background[_Call] = Background(self._export, "tokentrail-otel")

    def record(self, record: UsageRecord) -> None:
        """Queue the span and measurements of one captured call (a tracker listener).

        The current context (the parent span) is taken now, on the caller's thread; the
        span and measurements are made on the background thread.
        """
        warnings: list[BudgetStatus] | None = getattr(self._pending, "statuses", None)
        if warnings:
            self._pending.statuses = None
        self._background.put((record, context.get_current(), warnings))

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until the spans and measurements of every call so far are made (handed to
        the SDK's processors, which export on their own schedule)."""
        return self._background.flush(timeout)

    def close(self) -> None:
        """Make what is queued and end the background thread (the tracker is closing)."""
        self._background.close()

    def _export(self, call: _Call) -> None:
        record, parent, warnings = call
        try:
            self._span(record, parent, warnings)
        except Exception:
            logger.exception("tokentrail: could not make the OpenTelemetry span of a call")
        try:
            self._measure(record)
        except Exception:
            logger.exception("tokentrail: could not record the OpenTelemetry metrics of a call")

    def _span(
        self, record: UsageRecord, parent: Context, warnings: list[BudgetStatus] | None
    ) -> None:
        start = epoch_micros(record.ts) * 1000
        latency = record.latency_ms
        end = start + int(latency * 1e6) if latency is not None and latency >= 0 else start
        attrs = metric_attributes(record)  # the sampling-relevant ones, known at start
        name = span_name(str(attrs["gen_ai.operation.name"]), request_model(record))
        span = self._tracer.start_span(
            name, kind=SpanKind.CLIENT, context=parent, attributes=attrs, start_time=start
        )
        if span.is_recording():  # a sampler that drops it: nothing more to build
            span.set_attributes(call_attributes(record))
            if record.status == "error":
                span.set_status(Status(StatusCode.ERROR))
            for status in warnings or ():
                span.add_event(_WARNING, budget_status_attributes(status), timestamp=end)
        span.end(end_time=end)

    def _measure(self, record: UsageRecord) -> None:
        attrs = metric_attributes(record)
        latency = record.latency_ms
        if latency is not None and latency >= 0:
            timed = {**attrs, "error.type": record.error_type or "_OTHER"}
            self._duration.record(latency / 1000.0, timed if record.status == "error" else attrs)
        if record.status != "error":  # the conventions: no token usage for failed calls
            usage = record.usage
            self._tokens.record(usage.input_tokens, {**attrs, "gen_ai.token.type": "input"})
            self._tokens.record(usage.output_tokens, {**attrs, "gen_ai.token.type": "output"})
        if record.cost is not None:
            self._cost.add(float(record.cost.total), attrs)

    def refused(self, request: PreflightRequest, error: BudgetExceededError) -> None:
        """A budget refused a call before it was sent: a short span, an event, a count."""
        try:
            attrs = refusal_request_attributes(request)
            self._refusals.add(1, attrs)
            span = self._tracer.start_span(_REFUSED, kind=SpanKind.INTERNAL, attributes=attrs)
            span.set_attribute("error.type", type(error).__name__)
            span.add_event(_REFUSED, refusal_attributes(error))
            span.set_status(Status(StatusCode.ERROR, "budget exceeded; nothing was sent"))
            span.end()
        except Exception:
            logger.exception("tokentrail: could not report a budget refusal to OpenTelemetry")

    def on_warn(
        self, callback: Callable[[BudgetStatus], Any] | None
    ) -> Callable[[BudgetStatus], Any]:
        """A budget's ``on_warn``: note the warning for the span of the call that crossed
        the threshold, then call the user's ``callback`` (if any)."""

        def warned(status: BudgetStatus) -> Any:
            statuses: list[BudgetStatus] | None = getattr(self._pending, "statuses", None)
            if statuses is None:
                self._pending.statuses = statuses = []
            statuses.append(status)
            return None if callback is None else callback(status)

        return warned


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tokentrail")
    except PackageNotFoundError:
        return ""
