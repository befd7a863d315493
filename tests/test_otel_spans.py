"""``Tracker(otel=True)``: every call is a GenAI span whose attributes equal its stored row.

Real ``langchain-openai`` / ``langchain-anthropic`` / ``llama-index-llms-openai`` clients and
the ``openai`` SDK talk to the loopback wire server; the spans come from the SDK's in-memory
exporter behind the global provider (the ``otel`` fixture). Each call is made inside an app
span, and its span must be that span's child.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import SpanKind, StatusCode

from tests.otel_support import Collector, expected_attributes, row_times_ns
from tests.wire import Reply, WireServer

Rows = Callable[..., list[dict[str, Any]]]


@pytest.fixture
def tracker(tmp_path: Any, otel: Collector) -> Iterator[Any]:
    """A tracker with ``otel=True`` on a fresh database (replaces the plain one)."""
    from tokentrail import Tracker

    t = Tracker(tmp_path / "usage.duckdb", otel=True)
    try:
        yield t
    finally:
        t.close()


def _one_call_span(otel: Collector, row: dict[str, Any], parent: Any) -> Any:
    """The one tokentrail span, checked against ``row`` and nested under ``parent``."""
    [span] = otel.spans()
    assert dict(span.attributes or {}) == expected_attributes(row)
    model = row["model"]
    operation = "embeddings" if row["operation"] == "embedding" else "chat"
    assert span.name == f"{operation} {model}"
    assert span.kind is SpanKind.CLIENT
    assert (span.start_time, span.end_time) == row_times_ns(row)
    assert span.parent is not None
    assert span.parent.span_id == parent.get_span_context().span_id
    assert span.context.trace_id == parent.get_span_context().trace_id
    assert span.instrumentation_scope.name == "tokentrail"
    return span


# ---------------------------------------------------------------------- LangChain
def test_langchain_chat_is_a_client_span_under_the_app_span_equal_to_its_row(
    tracker: Any, otel: Collector, chat_openai: Callable[..., Any], wire_server: Any, rows: Rows
) -> None:
    wire_server.enqueue(
        input_tokens=1200, cached_tokens=1000, output_tokens=80, reasoning_tokens=30
    )
    handler = tracker.langchain(user_id="u1", session_id="s1", operation="qa", tags=["beta"])
    with otel.tracer.start_as_current_span("POST /ask") as app:
        chat_openai(model="gpt-4o-mini").invoke("hi", config={"callbacks": [handler]})

    [row] = rows(tracker)
    span = _one_call_span(otel, row, app)
    assert span.status.status_code is StatusCode.UNSET
    attrs = span.attributes or {}
    # The figures the wire sent, as the conventions name them.
    assert attrs["gen_ai.usage.input_tokens"] == 1200
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 1000
    assert attrs["gen_ai.usage.reasoning.output_tokens"] == 30
    assert attrs["user.id"] == "u1" and attrs["session.id"] == "s1"
    assert attrs["tokentrail.tags"] == ("beta",)
    assert attrs["tokentrail.total_cost"] > 0
    assert str(attrs["gen_ai.response.id"]).startswith("chatcmpl-")
    # No prompt or response text anywhere on the span.
    text = repr(dict(attrs)) + repr([e.attributes for e in span.events])
    assert "hi'" not in text and Reply().text not in text


def test_langchain_stream_span_is_marked_streamed(
    tracker: Any, otel: Collector, chat_openai: Callable[..., Any], wire_server: Any, rows: Rows
) -> None:
    wire_server.enqueue(input_tokens=300, output_tokens=12)
    handler = tracker.langchain(user_id="u2")
    with otel.tracer.start_as_current_span("job") as app:
        llm = chat_openai(model="gpt-4o-mini", stream_usage=True)
        chunks = list(llm.stream("hi", config={"callbacks": [handler]}))
    assert chunks

    [row] = rows(tracker)
    assert row["streamed"] is True
    span = _one_call_span(otel, row, app)
    assert (span.attributes or {})["tokentrail.streamed"] is True


def test_langchain_anthropic_cache_writes_are_cache_creation_tokens(
    tracker: Any, otel: Collector, chat_anthropic: Callable[..., Any], wire_server: Any, rows: Rows
) -> None:
    wire_server.enqueue(
        input_tokens=5000, cached_tokens=1000, cache_write_5m=3000, output_tokens=40
    )
    with otel.tracer.start_as_current_span("app") as app:
        chat_anthropic().invoke("hi", config={"callbacks": [tracker.langchain()]})

    [row] = rows(tracker)
    span = _one_call_span(otel, row, app)
    attrs = span.attributes or {}
    assert attrs["gen_ai.provider.name"] == "anthropic"
    assert attrs["gen_ai.usage.cache_creation.input_tokens"] == 3000
    assert attrs["gen_ai.usage.input_tokens"] == 5000  # cache reads and writes included


def test_langchain_failed_call_is_an_error_span(
    tracker: Any, otel: Collector, chat_openai: Callable[..., Any], wire_server: Any, rows: Rows
) -> None:
    import openai

    wire_server.enqueue(Reply(status=429, error_message="Rate limit reached"))
    with otel.tracer.start_as_current_span("app") as app:
        with pytest.raises(openai.RateLimitError):
            chat_openai().invoke("hi", config={"callbacks": [tracker.langchain(user_id="u1")]})

    [row] = rows(tracker)
    assert row["status"] == "error"
    span = _one_call_span(otel, row, app)
    assert span.status.status_code is StatusCode.ERROR
    assert "RateLimitError" in str((span.attributes or {})["error.type"])
    assert "gen_ai.response.model" not in (span.attributes or {})


# ---------------------------------------------------------------------- LlamaIndex
@pytest.fixture
def attached(tracker: Any, llamaindex_left_clean: None) -> Iterator[Any]:
    handle = tracker.llamaindex(user_id="u1", session_id="s9", operation="qa")
    try:
        yield handle
    finally:
        handle.detach()


def test_llamaindex_chat_span_under_the_app_span_equal_to_its_row(
    tracker: Any,
    otel: Collector,
    attached: Any,
    li_openai: Callable[..., Any],
    wire_server: Any,
    rows: Rows,
) -> None:
    from llama_index.core.base.llms.types import ChatMessage

    wire_server.enqueue(input_tokens=1000, cached_tokens=400, output_tokens=50, reasoning_tokens=10)
    with otel.tracer.start_as_current_span("POST /query") as app:
        li_openai().chat([ChatMessage(role="user", content="hi")])

    [row] = rows(tracker)
    assert row["framework"] == "llamaindex"
    _one_call_span(otel, row, app)


def test_llamaindex_stream_span_equal_to_its_row(
    tracker: Any,
    otel: Collector,
    attached: Any,
    li_openai: Callable[..., Any],
    wire_server: Any,
    rows: Rows,
) -> None:
    from llama_index.core.base.llms.types import ChatMessage

    wire_server.enqueue(input_tokens=2000, cached_tokens=1000, output_tokens=300)
    with otel.tracer.start_as_current_span("stream") as app:
        for _ in li_openai().stream_chat([ChatMessage(role="user", content="hi")]):
            pass

    [row] = rows(tracker)
    assert row["streamed"] is True
    _one_call_span(otel, row, app)


def test_llamaindex_embeddings_are_embeddings_spans(
    tracker: Any,
    otel: Collector,
    attached: Any,
    openai_client: Any,
    wire_server: WireServer,
    rows: Rows,
) -> None:
    from tests.llamaindex_support import SDKOpenAIEmbedding

    embed = SDKOpenAIEmbedding(
        model_name="text-embedding-3-small",
        client=openai_client,
        api_base=wire_server.openai_base_url,
    )
    with otel.tracer.start_as_current_span("index") as app:
        embed.get_query_embedding("capital of France")

    [row] = rows(tracker)
    span = _one_call_span(otel, row, app)
    assert span.name == "embeddings text-embedding-3-small"
    assert (span.attributes or {})["tokentrail.estimated"] is True


def test_llamaindex_failed_call_is_an_error_span(
    tracker: Any,
    otel: Collector,
    attached: Any,
    li_openai: Callable[..., Any],
    wire_server: Any,
    rows: Rows,
) -> None:
    from llama_index.core.base.llms.types import ChatMessage

    wire_server.enqueue(Reply(status=429, request_id="req_rate_limited"))
    with otel.tracer.start_as_current_span("app") as app:
        with pytest.raises(Exception, match=r"429|[Rr]ate"):
            li_openai().chat([ChatMessage(role="user", content="hi")])

    [row] = rows(tracker)
    span = _one_call_span(otel, row, app)
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["tokentrail.request_id"] == "req_rate_limited"


# ---------------------------------------------------------------------- budgets
def test_refused_call_is_a_short_error_span_with_the_budget_in_an_event(
    tracker: Any, otel: Collector, chat_openai: Callable[..., Any], wire_server: Any, rows: Rows
) -> None:
    from tokentrail import BudgetExceededError

    tracker.budget(usd="0.000001", per="day", scope="user")
    with otel.tracer.start_as_current_span("POST /ask") as app:
        with pytest.raises(BudgetExceededError) as refused:
            chat_openai(max_tokens=1000).invoke(
                "hi", config={"callbacks": [tracker.langchain(user_id="u1")]}
            )

    assert wire_server.request_count == 0 and rows(tracker) == []
    [span] = otel.spans()
    assert span.name == "tokentrail.budget.refused"
    assert span.kind is SpanKind.INTERNAL
    assert span.status.status_code is StatusCode.ERROR
    assert span.parent is not None and span.parent.span_id == app.get_span_context().span_id
    assert dict(span.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "error.type": "BudgetExceededError",
    }
    error = refused.value
    [event] = span.events
    assert event.name == "tokentrail.budget.refused"
    assert dict(event.attributes or {}) == {
        "tokentrail.budget.scope": "user",
        "tokentrail.budget.key": "u1",
        "tokentrail.budget.window": "day",
        "tokentrail.budget.unit": "usd",
        "tokentrail.budget.limit": 0.000001,
        "tokentrail.budget.spent": float(error.spent),
        "tokentrail.budget.reserved": float(error.reserved),
        "tokentrail.budget.estimate": float(error.estimate),
    }
    assert float(error.estimate) > 0.000001


def test_crossed_warning_threshold_is_an_event_on_that_calls_span(
    tracker: Any, otel: Collector, chat_openai: Callable[..., Any], wire_server: Any, rows: Rows
) -> None:
    seen: list[Any] = []
    # gpt-4o-mini, 1000 in + 100 out = $0.00021: 70% of a $0.0003 budget (warn at 50%).
    tracker.budget(usd="0.0003", per="day", scope="global", warn_at=[0.5], on_warn=seen.append)
    wire_server.enqueue(input_tokens=1000, output_tokens=100)
    wire_server.enqueue(input_tokens=10, output_tokens=1)
    handler = tracker.langchain()
    with pytest.warns(Warning, match="70% of daily limit"):
        chat_openai(max_tokens=100).invoke("hi", config={"callbacks": [handler]})
    chat_openai(max_tokens=1).invoke("hi", config={"callbacks": [handler]})

    assert len(seen) == 1  # the user's own on_warn still runs
    stored = rows(tracker)  # flushes the spans too
    first, second = otel.spans()
    [event] = first.events
    assert event.name == "tokentrail.budget.warning"
    assert dict(event.attributes or {}) == {
        "tokentrail.budget.scope": "global",
        "tokentrail.budget.window": "day",
        "tokentrail.budget.unit": "usd",
        "tokentrail.budget.limit": 0.0003,
        "tokentrail.budget.spent": float(seen[0].spent),
        "tokentrail.budget.percent": seen[0].percent,
    }
    assert second.events == ()  # a warning belongs to the call that crossed it only
    assert [r["id"] for r in stored] == [
        first.attributes["tokentrail.id"],  # type: ignore[index]
        second.attributes["tokentrail.id"],  # type: ignore[index]
    ]


# ---------------------------------------------------------------------- the switch
def test_environment_variable_switches_it_on(
    tmp_path: Any, otel: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tokentrail import Tracker

    monkeypatch.setenv("TOKENTRAIL_OTEL", "1")
    with Tracker(tmp_path / "on.duckdb") as on:
        on.record(model="gpt-4o-mini", usage={"input_tokens": 10, "output_tokens": 2})
    monkeypatch.setenv("TOKENTRAIL_OTEL", "0")
    with Tracker(tmp_path / "off.duckdb") as off:
        off.record(model="gpt-4o-mini", usage={"input_tokens": 10, "output_tokens": 2})
    with Tracker(tmp_path / "explicit.duckdb", otel=False) as explicit:
        monkeypatch.setenv("TOKENTRAIL_OTEL", "1")
        explicit.record(model="gpt-4o-mini", usage={"input_tokens": 10, "output_tokens": 2})
    assert [s.name for s in otel.spans()] == ["chat gpt-4o-mini"]


def test_off_by_default_opentelemetry_is_never_imported(tmp_path: Any) -> None:
    code = textwrap.dedent(
        f"""
        import sys
        import tokentrail
        with tokentrail.Tracker({str(tmp_path / "u.duckdb")!r}) as t:
            t.record(model="gpt-4o-mini", usage={{"input_tokens": 10, "output_tokens": 2}})
            t.budget(usd=1)
        print(sorted(m for m in sys.modules if m.startswith(("opentelemetry", "tokentrail.otel"))))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "TOKENTRAIL_OTEL"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------- off the call's path
class _Probe(SpanProcessor):
    """Notes the thread each tokentrail span ends on; raises there while ``fail`` is set."""

    def __init__(self) -> None:
        self.active = False
        self.fail = False
        self.threads: list[str] = []

    def on_end(self, span: ReadableSpan) -> None:
        if not self.active or span.instrumentation_scope.name != "tokentrail":
            return
        self.threads.append(threading.current_thread().name)
        if self.fail:
            raise RuntimeError("exporter broke")


@pytest.fixture
def probe(otel: Collector) -> Iterator[_Probe]:
    from opentelemetry import trace

    found = _Probe()
    trace.get_tracer_provider().add_span_processor(found)  # type: ignore[attr-defined]
    found.active = True
    try:
        yield found
    finally:
        found.active = False  # the global provider keeps it: make it inert


def test_spans_are_made_on_the_background_thread_and_its_failures_stay_there(
    tracker: Any,
    otel: Collector,
    probe: _Probe,
    chat_openai: Callable[..., Any],
    wire_server: Any,
    rows: Rows,
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler = tracker.langchain()
    probe.fail = True
    answer = chat_openai().invoke("hi", config={"callbacks": [handler]})  # does not raise
    assert answer.content
    assert tracker.flush(10)
    probe.fail = False
    chat_openai().invoke("hi", config={"callbacks": [handler]})

    assert len(rows(tracker)) == 2  # both calls stored
    assert probe.threads == ["tokentrail-otel", "tokentrail-otel"]  # never the caller's
    assert "could not make the OpenTelemetry span" in caplog.text


def test_manual_record_maps_the_provider_and_an_unpriced_call_has_no_cost_attributes(
    tracker: Any, otel: Collector
) -> None:
    tracker.record(
        model="anthropic.claude-nonexistent-v9",
        provider="bedrock",
        usage={"input_tokens": 30, "output_tokens": 4},
        status="cancelled",
        latency_ms=12.5,
    )
    tracker.record(model="gemini-2.5-flash", provider="google", usage={"input_tokens": 1})
    assert tracker.flush(10)

    bedrock, google = otel.spans()
    attrs = dict(bedrock.attributes or {})
    assert attrs["gen_ai.provider.name"] == "aws.bedrock"
    assert attrs["tokentrail.status"] == "cancelled"
    assert bedrock.status.status_code is StatusCode.UNSET  # cancelled is not a failure
    assert "gen_ai.response.model" not in attrs and "error.type" not in attrs
    assert not [k for k in attrs if k.endswith("_cost")]  # unknown model: no price
    assert bedrock.end_time - bedrock.start_time == 12_500_000
    assert (google.attributes or {})["gen_ai.provider.name"] == "gcp.gen_ai"


def test_every_count_and_money_column_is_an_attribute() -> None:
    """A column added to the table (a new token kind, a new fee) reaches the span too:
    each count is its GenAI attribute or ``tokentrail.<column>``, each money column
    ``tokentrail.<column>``."""
    from decimal import Decimal

    from tokentrail.otel_attributes import call_attributes
    from tokentrail.pricing import Cost
    from tokentrail.records import MONEY_COLUMNS, UsageRecord
    from tokentrail.usage import COUNT_FIELDS, Usage

    counts = {name: 0 for name in COUNT_FIELDS}
    record = UsageRecord(
        model="gpt-4o-mini",
        provider="openai",
        usage=Usage(**counts),
        cost=Cost(total=Decimal("0.5")),
    )
    attrs = call_attributes(record)
    genai = {
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
    }
    for name in COUNT_FIELDS:
        assert name in genai or f"tokentrail.{name}" in attrs, name
    for column in MONEY_COLUMNS:
        assert f"tokentrail.{column}" in attrs, column
