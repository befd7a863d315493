"""``Tracker(otel=True)`` metrics: token usage, duration, cost and refusals equal the stored rows.

The SDK's in-memory reader (delta temporality) behind the global ``MeterProvider``; calls
go through real ``langchain-openai`` and ``llama-index-llms-openai`` clients to the
loopback wire server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.otel_support import Collector, Point
from tests.wire import Reply

Rows = Callable[..., list[dict[str, Any]]]
MODEL = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
}


@pytest.fixture
def tracker(tmp_path: Any, otel: Collector) -> Iterator[Any]:
    from tokentrail import Tracker

    t = Tracker(tmp_path / "usage.duckdb", otel=True)
    try:
        yield t
    finally:
        t.close()


def _by_name(points: list[Point]) -> dict[str, list[Point]]:
    found: dict[str, list[Point]] = {}
    for p in points:
        assert p.scope == "tokentrail"
        found.setdefault(p.name, []).append(p)
    return found


def test_metrics_of_two_calls_and_a_failure_equal_their_rows(
    tracker: Any, otel: Collector, chat_openai: Callable[..., Any], wire_server: Any, rows: Rows
) -> None:
    wire_server.enqueue(input_tokens=1200, cached_tokens=1000, output_tokens=80)
    wire_server.enqueue(input_tokens=40, output_tokens=7)
    wire_server.enqueue(Reply(status=500, error_message="boom"))
    handler = tracker.langchain(user_id="u1", session_id="s1")
    llm = chat_openai(model="gpt-4o-mini")
    llm.invoke("hi", config={"callbacks": [handler]})
    llm.invoke("hi", config={"callbacks": [handler]})
    with pytest.raises(Exception, match="boom"):
        llm.invoke("hi", config={"callbacks": [handler]})

    got = rows(tracker)
    ok = [r for r in got if r["status"] == "ok"]
    [failed] = [r for r in got if r["status"] == "error"]
    metrics = _by_name(otel.points())
    assert set(metrics) == {
        "gen_ai.client.token.usage",
        "gen_ai.client.operation.duration",
        "tokentrail.cost",
    }

    # Token usage: one histogram point per token type, the successful calls only.
    tokens = {p.attributes["gen_ai.token.type"]: p for p in metrics["gen_ai.client.token.usage"]}
    assert set(tokens) == {"input", "output"}
    for kind in ("input", "output"):
        point = tokens[kind]
        assert point.unit == "{token}"
        assert point.attributes == {**MODEL, "gen_ai.token.type": kind}
        assert point.count == len(ok)
        assert point.sum == sum(r[f"{kind}_tokens"] for r in ok)

    # Duration: seconds, the failure apart with its error.type.
    durations = {
        p.attributes.get("error.type"): p for p in metrics["gen_ai.client.operation.duration"]
    }
    assert set(durations) == {None, failed["error_type"]}
    assert durations[None].unit == "s"
    assert durations[None].count == 2
    assert durations[None].sum == pytest.approx(sum(r["latency_ms"] for r in ok) / 1000, rel=1e-9)
    assert durations[failed["error_type"]].sum == pytest.approx(failed["latency_ms"] / 1000)

    # Cost: a counter in USD, the sum of the stored costs.
    [cost] = metrics["tokentrail.cost"]
    assert cost.unit == "USD"
    assert cost.attributes == MODEL
    assert cost.sum == pytest.approx(float(sum(r["total_cost"] for r in got)), rel=1e-12)

    # Never a user or session id on a metric (unbounded cardinality).
    for points in metrics.values():
        for p in points:
            assert set(p.attributes) <= {*MODEL, "gen_ai.token.type", "error.type"}


def test_a_refusal_counts_once_and_records_no_call(
    tracker: Any, otel: Collector, chat_openai: Callable[..., Any], wire_server: Any
) -> None:
    from tokentrail import BudgetExceededError

    tracker.budget(usd="0.000001", per="day")
    with pytest.raises(BudgetExceededError):
        chat_openai(max_tokens=500).invoke(
            "hi", config={"callbacks": [tracker.langchain(user_id="u1")]}
        )

    [refusal] = otel.points()
    assert (refusal.name, refusal.unit, refusal.sum) == ("tokentrail.budget.refusals", "{call}", 1)
    assert refusal.attributes == MODEL
    assert wire_server.request_count == 0


async def test_async_calls_nest_under_their_own_task_span(
    tracker: Any, otel: Collector, chat_openai: Callable[..., Any], wire_server: Any, rows: Rows
) -> None:
    wire_server.set_default(input_tokens=20, output_tokens=5, delay=0.05)
    handler = tracker.langchain()
    llm = chat_openai()

    async def one(name: str) -> Any:
        with otel.tracer.start_as_current_span(name) as span:
            await llm.ainvoke("hi", config={"callbacks": [handler]})
            return span

    parents = await asyncio.gather(one("task-a"), one("task-b"))

    assert wire_server.max_in_flight == 2  # both in flight at once
    assert len(rows(tracker)) == 2  # flushes the spans too
    spans = otel.spans()
    assert len(spans) == 2
    under = {s.parent.span_id for s in spans if s.parent is not None}
    assert under == {p.get_span_context().span_id for p in parents}
    points = _by_name(otel.points())
    [duration] = points["gen_ai.client.operation.duration"]
    assert duration.count == 2
