"""The model asked for vs. the model that answered, and text completions, on OpenTelemetry spans.

OpenAI answers a request for an alias (``gpt-4o-mini``) naming the snapshot that served it
(``gpt-4o-mini-2024-07-18``), as its Chat Completions reference shows
(https://platform.openai.com/docs/api-reference/chat/object, ``model``). The GenAI semantic
conventions keep both: ``gen_ai.request.model`` (asked for, also in the span name
``{gen_ai.operation.name} {gen_ai.request.model}``) and ``gen_ai.response.model``
(https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/). Text-completion calls
(a LangChain ``BaseLLM``, LlamaIndex ``complete()``) are ``gen_ai.operation.name``
``text_completion``, one of the conventions' well-known operation names.

Real ``langchain-openai`` and ``llama-index-llms-openai`` clients against the loopback wire
server (``/v1/chat/completions`` and the legacy ``/v1/completions``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import INSTRUCT
from tests.otel_support import Collector, expected_attributes
from tests.wire import Reply, WireServer

Rows = Callable[..., list[dict[str, Any]]]
ASKED = "gpt-4o-mini"
ANSWERED = "gpt-4o-mini-2024-07-18"


@pytest.fixture
def tracker(tmp_path: Any, otel: Collector) -> Iterator[Any]:
    """A tracker with ``otel=True`` on a fresh database."""
    from tokentrail import Tracker

    t = Tracker(tmp_path / "usage.duckdb", otel=True)
    try:
        yield t
    finally:
        t.close()


@pytest.fixture
def attached(tracker: Any, llamaindex_left_clean: None) -> Iterator[Any]:
    handle = tracker.llamaindex(user_id="u1")
    try:
        yield handle
    finally:
        handle.detach()


def _span(otel: Collector, tracker: Any, row: dict[str, Any], asked: str) -> Any:
    """The call's one span, checked whole against its row and the model asked for."""
    tracker.flush()
    [span] = otel.spans()
    assert dict(span.attributes or {}) == expected_attributes(row, asked)
    return span


def _request_metric_models(otel: Collector) -> set[Any]:
    return {
        p.attributes.get("gen_ai.request.model")
        for p in otel.points()
        if p.name == "gen_ai.client.token.usage"
    }


# ------------------------------------------------------------------ request vs response model
def test_langchain_span_names_the_model_asked_for_and_the_one_that_answered(
    tracker: Any,
    otel: Collector,
    chat_openai: Callable[..., Any],
    wire_server: WireServer,
    rows: Rows,
) -> None:
    wire_server.enqueue(Reply(model=ANSWERED, input_tokens=20, output_tokens=5))
    chat_openai(model=ASKED).invoke("hi", config={"callbacks": [tracker.langchain()]})

    assert wire_server.bodies()[0]["model"] == ASKED
    [row] = rows(tracker)
    assert row["model"] == ANSWERED  # the row keeps the model that answered
    span = _span(otel, tracker, row, ASKED)
    assert span.name == f"chat {ASKED}"
    attrs = span.attributes or {}
    assert attrs["gen_ai.request.model"] == ASKED
    assert attrs["gen_ai.response.model"] == ANSWERED
    assert _request_metric_models(otel) == {ASKED}


def test_llamaindex_span_names_the_model_asked_for_and_the_one_that_answered(
    tracker: Any,
    otel: Collector,
    attached: Any,
    li_openai: Callable[..., Any],
    wire_server: WireServer,
    rows: Rows,
) -> None:
    from llama_index.core.base.llms.types import ChatMessage

    wire_server.enqueue(Reply(model=ANSWERED, input_tokens=20, output_tokens=5))
    li_openai(model=ASKED).chat([ChatMessage(role="user", content="hi")])

    [row] = rows(tracker)
    assert row["model"] == ANSWERED
    span = _span(otel, tracker, row, ASKED)
    assert span.name == f"chat {ASKED}"
    assert (span.attributes or {})["gen_ai.response.model"] == ANSWERED
    assert _request_metric_models(otel) == {ASKED}


def test_a_failed_call_still_names_the_model_asked_for(
    tracker: Any,
    otel: Collector,
    chat_openai: Callable[..., Any],
    wire_server: WireServer,
    rows: Rows,
) -> None:
    import openai

    wire_server.enqueue(Reply(status=500))
    with pytest.raises(openai.InternalServerError):
        chat_openai(model=ASKED).invoke("hi", config={"callbacks": [tracker.langchain()]})

    [row] = rows(tracker)
    span = _span(otel, tracker, row, ASKED)
    assert span.name == f"chat {ASKED}"
    assert "gen_ai.response.model" not in (span.attributes or {})


# ------------------------------------------------------------------ text completions
def test_langchain_completion_llm_is_a_text_completion(
    tracker: Any,
    otel: Collector,
    wire_server: WireServer,
    rows: Rows,
    lc_completion: Callable[..., Any],
) -> None:
    # gpt-3.5-turbo-instruct: $1.50 / $2.00 per 1M input / output tokens
    # (https://platform.openai.com/docs/pricing, legacy models).
    wire_server.enqueue(Reply(input_tokens=1000, output_tokens=500))
    lc_completion().invoke("Say hi", config={"callbacks": [tracker.langchain()]})

    assert [r.path for r in wire_server.requests] == ["/v1/completions"]
    [row] = rows(tracker)
    assert row["operation"] == "text_completion"
    assert (row["input_tokens"], row["output_tokens"]) == (1000, 500)
    assert str(row["total_cost"]).rstrip("0") == "0.0025"  # 0.0015 + 0.0010
    span = _span(otel, tracker, row, INSTRUCT)
    assert span.name == f"text_completion {INSTRUCT}"
    assert (span.attributes or {})["gen_ai.operation.name"] == "text_completion"


def test_langchain_streamed_completion_is_a_text_completion(
    tracker: Any,
    otel: Collector,
    wire_server: WireServer,
    rows: Rows,
    lc_completion: Callable[..., Any],
) -> None:
    wire_server.enqueue(Reply(text="one two three", input_tokens=9, output_tokens=3))
    llm = lc_completion(streaming=True, model_kwargs={"stream_options": {"include_usage": True}})
    pieces = list(llm.stream("count", config={"callbacks": [tracker.langchain()]}))

    assert "".join(pieces) == "one two three"
    [row] = rows(tracker)
    assert row["operation"] == "text_completion" and row["streamed"] is True
    assert _span(otel, tracker, row, INSTRUCT).name == f"text_completion {INSTRUCT}"


def test_the_users_operation_wins_over_text_completion(
    tracker: Any,
    otel: Collector,
    wire_server: WireServer,
    rows: Rows,
    lc_completion: Callable[..., Any],
) -> None:
    # Budgets and reports are keyed on the user's operation: the integration does not
    # overwrite it (the span then says chat: the record keeps one operation).
    wire_server.enqueue(Reply())
    handler = tracker.langchain(operation="summarize")
    lc_completion().invoke("x", config={"callbacks": [handler]})
    [row] = rows(tracker)
    assert row["operation"] == "summarize"


def test_llamaindex_complete_is_a_text_completion(
    tracker: Any,
    otel: Collector,
    attached: Any,
    li_openai: Callable[..., Any],
    wire_server: WireServer,
    rows: Rows,
) -> None:
    wire_server.enqueue(Reply(input_tokens=40, output_tokens=8))
    li_openai(model=INSTRUCT).complete("Say hi")

    assert [r.path for r in wire_server.requests] == ["/v1/completions"]
    [row] = rows(tracker)
    assert row["operation"] == "text_completion"
    assert (row["input_tokens"], row["output_tokens"]) == (40, 8)
    span = _span(otel, tracker, row, INSTRUCT)
    assert span.name == f"text_completion {INSTRUCT}"


def test_llamaindex_chat_model_complete_is_a_text_completion_too(
    tracker: Any,
    otel: Collector,
    attached: Any,
    li_openai: Callable[..., Any],
    wire_server: WireServer,
    rows: Rows,
) -> None:
    # complete() on a chat model is sent as a chat request, but the app asked for a completion.
    wire_server.enqueue(Reply(model=ANSWERED))
    li_openai(model=ASKED).complete("Say hi")

    [row] = rows(tracker)
    assert row["operation"] == "text_completion"
    span = _span(otel, tracker, row, ASKED)
    assert span.name == f"text_completion {ASKED}"
