"""OpenTelemetry test helpers: the SDK's in-memory exporters behind the global providers, and
the attributes a call's span must carry, written out from its stored row.

The global ``TracerProvider`` and ``MeterProvider`` can be set once per process, so
:func:`collector` sets them the first time and every test after drains what is left over
before it starts (the ``otel`` fixture in ``conftest.py``). The metric reader asks for
delta temporality: each collection holds only what was measured since the one before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timezone
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

__all__ = [
    "Collector",
    "Point",
    "collector",
    "expected_attributes",
    "operation_name",
    "row_times_ns",
]

# The conventions' well-known provider names for the providers these tests use.
_PROVIDER = {"openai": "openai", "anthropic": "anthropic"}
# The ``operation`` column values the integrations set -> ``gen_ai.operation.name``.
_OPERATIONS = {"embedding": "embeddings", "text_completion": "text_completion"}
_MONEY = (
    "total_cost",
    "input_cost",
    "cache_read_cost",
    "cache_write_cost",
    "output_cost",
    "reasoning_cost",
    "audio_cost",
    "fee_cost",
)


@dataclass(frozen=True)
class Point:
    """One metric data point: instrument name, unit, attributes, and sum/count or value."""

    name: str
    unit: str
    attributes: dict[str, Any]
    sum: float
    count: int
    scope: str


class Collector:
    """The SDK's in-memory span exporter and metric reader behind the global providers."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.reader = InMemoryMetricReader(
            preferred_temporality={
                Counter: AggregationTemporality.DELTA,
                Histogram: AggregationTemporality.DELTA,
            }
        )
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        trace.set_tracer_provider(provider)
        metrics.set_meter_provider(MeterProvider(metric_readers=[self.reader]))
        self.tracer = trace.get_tracer("tests.app")

    def reset(self) -> None:
        """Forget every span and measurement so far."""
        self.exporter.clear()
        self.points()

    def spans(self, scope: str | None = "tokentrail") -> list[ReadableSpan]:
        """Finished spans of ``scope`` (``None``: every scope), in the order they ended."""
        return [
            s
            for s in self.exporter.get_finished_spans()
            if scope is None or (s.instrumentation_scope and s.instrumentation_scope.name == scope)
        ]

    def points(self) -> list[Point]:
        """The data points measured since the last call (delta temporality)."""
        data = self.reader.get_metrics_data()
        found: list[Point] = []
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    for dp in metric.data.data_points:
                        total = getattr(dp, "sum", None)
                        if total is None:
                            total = dp.value  # a counter's point
                        found.append(
                            Point(
                                metric.name,
                                metric.unit or "",
                                dict(dp.attributes or {}),
                                float(total),
                                int(getattr(dp, "count", 1)),
                                sm.scope.name,
                            )
                        )
        return found


_COLLECTOR: list[Collector] = []


def collector() -> Collector:
    """The process's collector (made, and set as the global providers, on first use)."""
    if not _COLLECTOR:
        _COLLECTOR.append(Collector())
    return _COLLECTOR[0]


def row_times_ns(row: Mapping[str, Any]) -> tuple[int, int]:
    """(start, end) of a stored row in ns since the epoch: ``ts`` and ``ts + latency_ms``."""
    ts = row["ts"].replace(tzinfo=timezone.utc)  # rows come back as naive UTC
    micros = int(ts.timestamp()) * 1_000_000 + ts.microsecond
    start = micros * 1000
    return start, start + int(row["latency_ms"] * 1e6)


def operation_name(row: Mapping[str, Any]) -> str:
    """The ``gen_ai.operation.name`` of a stored row."""
    return _OPERATIONS.get(row["operation"], "chat")


def expected_attributes(row: Mapping[str, Any], request_model: str | None = None) -> dict[str, Any]:
    """The attributes a call's span must carry, from its stored ``usage`` row and the model
    the request asked for (the row's ``model``, the one the response named, by default)."""
    ok = row["status"] == "ok"
    want: dict[str, Any] = {
        "gen_ai.operation.name": operation_name(row),
        "gen_ai.provider.name": _PROVIDER[row["provider"]],
        "gen_ai.request.model": request_model or row["model"],
        "gen_ai.usage.input_tokens": row["input_tokens"],
        "gen_ai.usage.output_tokens": row["output_tokens"],
        "gen_ai.usage.cache_read.input_tokens": row["cache_read_tokens"],
        "gen_ai.usage.cache_creation.input_tokens": row["cache_write_tokens"],
        "gen_ai.usage.reasoning.output_tokens": row["reasoning_tokens"],
        "tokentrail.cache_write_1h_tokens": row["cache_write_1h_tokens"],
        "tokentrail.input_audio_tokens": row["input_audio_tokens"],
        "tokentrail.output_audio_tokens": row["output_audio_tokens"],
        "tokentrail.input_image_tokens": row["input_image_tokens"],
        "tokentrail.output_image_tokens": row["output_image_tokens"],
        "tokentrail.cache_read_audio_tokens": row["cache_read_audio_tokens"],
        "tokentrail.input_video_tokens": row["input_video_tokens"],
        "tokentrail.web_search_requests": row["web_search_requests"],
        "tokentrail.id": row["id"],
        "tokentrail.framework": row["framework"],
        "tokentrail.status": row["status"],
        "tokentrail.estimated": row["estimated"],
        "tokentrail.streamed": row["streamed"],
    }
    for key, column in (
        ("user.id", "user_id"),
        ("session.id", "session_id"),
        ("tokentrail.operation", "operation"),
    ):
        if row[column] is not None:
            want[key] = row[column]
    if row["tags"]:
        want["tokentrail.tags"] = tuple(row["tags"])
    if ok:
        want["gen_ai.response.model"] = row["model"]
    if row["request_id"]:
        want["tokentrail.request_id" if row["status"] == "error" else "gen_ai.response.id"] = row[
            "request_id"
        ]
    if row["status"] == "error":
        want["error.type"] = row["error_type"]
    if row["total_cost"] is not None:
        for column in _MONEY:
            want[f"tokentrail.{column}"] = float(row[column])
        want["tokentrail.currency"] = row["currency"]
        want["tokentrail.cost_source"] = row["cost_source"]
        want["tokentrail.priced_model"] = row["priced_model"]
        want["tokentrail.catalog_version"] = row["catalog_version"]
    return want
