"""Per-call cost of ``Tracker(otel=True)``: the LangChain handler with OpenTelemetry on vs off.

Same in-process chat model as ``bench_langchain`` (no network), interleaved short rounds:

* base: ``model.invoke`` with no callback handler;
* off: ``tracker.langchain()`` of a ``Tracker(otel=False)`` (the default);
* on, API only: ``Tracker(otel=True)`` with no SDK configured (the API's no-op providers);
* on, SDK: ``Tracker(otel=True)`` with the SDK's ``TracerProvider`` + ``BatchSpanProcessor``
  (an exporter that drops the batches) and a ``MeterProvider`` with an in-memory reader,
  as an app that exports would have.

overhead = fastest round with the handler − fastest round without (timeit's advice on a
shared machine). The global providers can be set once per process, so the API-only rounds
run before the SDK is installed. Breakdown rows time the two halves of the work alone:
queueing a finished record on the caller's thread, and the span and measurements the
background thread then makes (CPU the process still spends, off the call's path).
"""

from __future__ import annotations

import gc
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .bench_langchain import _model, _time
from .rows import context_row, overhead_row

_OFF = "handler overhead per call, otel off"


def _install_sdk() -> None:
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class Drop(SpanExporter):
        """Takes every batch and keeps nothing (the export's own cost is not measured)."""

        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Drop()))
    trace.set_tracer_provider(provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))


def _parts(tracker: Any, n: int) -> tuple[float, float]:
    """Seconds per call of the two halves of ``Telemetry``: queueing a finished record on
    the caller's thread (``record``), and making its span and measurements (``_export``,
    the background thread's work), each timed alone (fastest of 7 rounds)."""
    from opentelemetry import context

    from tokentrail import Usage
    from tokentrail.records import UsageRecord

    telemetry = tracker._otel  # the benchmark looks inside; users never need to
    rec = UsageRecord(
        model="gpt-4o-mini",
        provider="openai",
        usage=Usage(input_tokens=1200, output_tokens=80, cache_read_tokens=1000),
        framework="langchain",
        latency_ms=250.0,
        user_id="bench",
    )
    rec.cost = tracker._price(rec)
    item = (rec, context.get_current(), None)
    queue_best = export_best = float("inf")
    for _ in range(7):
        gc.collect()
        t0 = time.perf_counter()
        for _ in range(n):
            telemetry.record(rec)
        queue_best = min(queue_best, (time.perf_counter() - t0) / n)
        telemetry.flush()
        t0 = time.perf_counter()
        for _ in range(n):
            telemetry._export(item)
        export_best = min(export_best, (time.perf_counter() - t0) / n)
    return queue_best, export_best


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Measure the handler with OpenTelemetry off and on; returns the benchmark rows."""
    from tokentrail import Tracker

    short_n, short_rounds = (50, 5) if quick else (100, 31)
    model = _model()
    with tempfile.TemporaryDirectory() as tmp:
        off = Tracker(Path(tmp) / "off.duckdb", otel=False)
        on = Tracker(Path(tmp) / "on.duckdb", otel=True)
        try:
            h_off = off.langchain(user_id="bench")
            h_on = on.langchain(user_id="bench")
            for handler in (None, h_off, h_on):  # warm up imports, pricing, files
                _time(model, 50, [handler] if handler else None)
            base: list[float] = []
            t_off: list[float] = []
            t_api: list[float] = []
            for _ in range(short_rounds):
                base.append(_time(model, short_n, None))
                t_off.append(_time(model, short_n, [h_off]))
                t_api.append(_time(model, short_n, [h_on]))
            _install_sdk()
            _time(model, 50, [h_on])
            base_sdk: list[float] = []
            t_off_sdk: list[float] = []
            t_sdk: list[float] = []
            for _ in range(short_rounds):
                base_sdk.append(_time(model, short_n, None))
                t_off_sdk.append(_time(model, short_n, [h_off]))
                t_sdk.append(_time(model, short_n, [h_on]))
            queued, exported = _parts(on, 200 if quick else 2000)
        finally:
            off.close()
            on.close()

    def over(variant: list[float], without: list[float]) -> float:
        return max(min(variant) - min(without), 0.0)

    off_over = max(over(t_off, base), 1e-9)
    off_over_sdk = max(over(t_off_sdk, base_sdk), 1e-9)
    return [
        overhead_row(
            "handler overhead per call, otel on, SDK with a batch span processor and a meter",
            over(t_sdk, base_sdk),
            off_over_sdk,
            _OFF,
            None,
        ),
        overhead_row(
            "handler overhead per call, otel on, no SDK configured (API no-op providers)",
            over(t_api, base),
            off_over,
            _OFF,
            None,
        ),
        overhead_row(
            "Telemetry.record alone per call: queueing the record on the caller's thread",
            queued,
            off_over_sdk,
            _OFF,
            None,
        ),
        overhead_row(
            "the background thread's work per call: span + attributes + 4 measurements (SDK)",
            exported,
            off_over_sdk,
            _OFF,
            None,
        ),
        context_row("langchain invoke without any handler (in-process model)", min(base)),
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
