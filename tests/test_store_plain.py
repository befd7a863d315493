"""The one-step capture of the usual call stores exactly what the general path stores.

``Tracker.capture_plain`` skips building a ``UsageRecord``: it asks the pricer for the
model's rates (``Pricer.lazy_rates``), writes the spool row from the call's parts
(``spool.plain_row``) and hands it to the store (``UsageStore.submit_row``). Each piece is
checked here against the general one it shortcuts, over the whole catalog and random
counts; then whole calls are stored both ways and their DuckDB rows compared; then every
case the one-step path must leave to the general one.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.test_lazy_pricing import random_usage, rows_by_id
from tokentrail import Tracker, pricing
from tokentrail.context import Attribution, CallContext
from tokentrail.pricing.lazy import RATES_MARK, LazyCost, pending_of
from tokentrail.records import UsageRecord, new_id
from tokentrail.store import reading
from tokentrail.store.spool import encode, plain_row
from tokentrail.usage import Usage

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def _state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


def _catalog_models() -> list[tuple[str, str | None]]:
    pricer = pricing.default_pricer()
    return [
        (e.id, e.provider or None)
        for e in pricing.models()
        if e.fixed and pricer.find(e.id, e.provider or None) is e
    ]


def _odd_usages(rng: random.Random) -> list[Usage]:
    """Counts the one-step path must decline: a long-context prompt, leaves below zero."""
    return [
        Usage(input_tokens=5_000_000, output_tokens=10),
        Usage(input_tokens=10, output_tokens=4, cache_read_tokens=11),
        Usage(input_tokens=10, output_tokens=4, reasoning_tokens=5),
        random_usage(rng),
    ]


def test_lazy_rates_are_what_usage_cost_puts_in_its_lazy_cost():
    pricer = pricing.default_pricer()
    rng = random.Random(7)
    models = [
        *_catalog_models(),
        ("claude-3-5-sonnet", "anthropic"),
        ("gemini-1.5-pro", "google"),  # tiered by prompt length
        ("llama3.2", "ollama"),  # a local provider: free, never lazily priced
        ("no-such-model-xyz", None),
        ("gpt-4o-mini", "no-such-provider"),
    ]
    taken = declined = 0
    for model, provider in models:
        for usage in [random_usage(rng), *_odd_usages(rng)]:
            rates = pricer.lazy_rates(model, provider, usage)
            cost = pricer.usage_cost(model, provider, usage)
            pending = pending_of(cost) if type(cost) is LazyCost else None
            if pending is None:
                assert rates is None, (model, provider, usage)
                declined += 1
            else:
                assert rates == (pending.static, pending.cells), (model, provider, usage)
                taken += 1
            # Asked again (now from the memo): the same answer.
            assert pricer.lazy_rates(model, provider, usage) == rates
    assert taken > 100 and declined > 100


def test_lazy_rates_follow_a_price_registered_after_the_model_was_asked_for():
    pricer = pricing.Pricer(env=False)
    usage = Usage(input_tokens=1000, output_tokens=10)
    assert pricer.lazy_rates("house-model-1", "acme", usage) is None
    pricer.register("house-model-1", provider="acme", input=1, output=2)
    rates = pricer.lazy_rates("house-model-1", "acme", usage)
    assert rates is not None
    assert rates[1][:2] == (RATES_MARK, "0.000001")  # the mark, then the input price per token
    pricer.register("house-model-1", provider="acme", input=3, output=2)
    rates = pricer.lazy_rates("house-model-1", "acme", usage)
    assert rates is not None and rates[1][1] == "0.000003"
    pricer.clear_overrides()
    assert pricer.lazy_rates("house-model-1", "acme", usage) is None


_ATTRIBUTIONS = [
    Attribution(),
    Attribution(user_id="u1", session_id="s1", operation="chat", tags=("a", "b")),
    Attribution(operation="é—\u2028", tags=("x",), metadata={"team": "search", "n": 3}),
]


def test_plain_row_is_encode_of_the_general_record():
    pricer = pricing.default_pricer()
    rng = random.Random(11)
    models = _catalog_models()
    ts = datetime(2026, 11, 23, 12, 30, 15, 123456, tzinfo=timezone.utc)
    checked = 0
    for i in range(600):
        model, provider = models[i % len(models)]
        usage = random_usage(rng)
        rates = pricer.lazy_rates(model, provider, usage)
        if rates is None:
            continue
        attribution = _ATTRIBUTIONS[i % len(_ATTRIBUTIONS)]
        metadata = [{}, {"tenant": "acme", "flag": True, "none": None}][i % 2]
        run_id = str(new_id())
        parent = None if i % 3 else str(new_id())
        request_id = [None, "req_1", ""][i % 3] or None
        record_id = new_id()
        row = plain_row(
            record_id,
            ts,
            12.5,
            "langchain",
            provider,
            model,
            attribution,
            run_id,
            parent,
            run_id,
            {**attribution.metadata, **metadata} if attribution.metadata else metadata,
            usage,
            rates,
            bool(i % 2),
            request_id,
        )
        record = UsageRecord(
            model=model,
            provider=provider,
            usage=usage,
            framework="langchain",
            id=record_id,
            ts=ts,
            latency_ms=12.5,
            run_id=run_id,
            parent_run_id=parent,
            trace_id=run_id,
            metadata=dict(metadata),
            streamed=bool(i % 2),
            request_id=request_id,
        )
        # What Tracker.capture does to it: attribution, then the catalog price.
        record.user_id = attribution.user_id
        record.session_id = attribution.session_id
        record.operation = attribution.operation
        record.tags = attribution.tags
        if attribution.metadata:
            record.metadata = {**attribution.metadata, **record.metadata}
        record.cost = pricer.usage_cost(model, provider, usage, ts)
        assert row == encode(record), (model, provider, usage)
        checked += 1
    assert checked > 300


def _rows(db: Path) -> list[dict[str, Any]]:
    """Every stored row but its (random) id, in call order."""
    rows = [{k: v for k, v in row.items() if k != "id"} for row in rows_by_id(db).values()]
    return sorted(rows, key=lambda row: row["run_id"])


def _calls(rng: random.Random, n: int) -> list[dict[str, Any]]:
    models = _catalog_models()
    start = datetime.now(timezone.utc)
    calls = []
    for i in range(n):
        model, provider = models[rng.randrange(len(models))]
        calls.append(
            {
                "model": model,
                "provider": provider,
                "usage": random_usage(rng),
                "ts": start + timedelta(seconds=rng.random() * 3600),
                "latency_ms": rng.random() * 1000,
                "context": CallContext(_ATTRIBUTIONS[i % len(_ATTRIBUTIONS)]),
                "run_id": f"run-{i:04d}",
                "parent_run_id": None if i % 2 else "parent",
                "trace_id": "trace",
                "metadata": {"i": i} if i % 4 == 0 else {},
                "streamed": bool(i % 3 == 0),
                "request_id": f"req-{i}" if i % 2 else None,
            }
        )
    return calls


def test_calls_stored_in_one_step_are_the_rows_capture_stores(tmp_path: Path):
    one_step = Tracker(tmp_path / "one.duckdb")
    general = Tracker(tmp_path / "general.duckdb")
    taken = 0
    try:
        for i, call in enumerate(_calls(random.Random(3), 400)):
            # The start as a datetime, or as microseconds since the epoch (the LangChain
            # handler's): the same time is stored.
            at = call["ts"] if i % 2 else (call["ts"] - _EPOCH) // timedelta(microseconds=1)
            if one_step.capture_plain("langchain", **{**call, "ts": at}):
                taken += 1
            else:
                one_step.capture(_record_of(call), context=call["context"])
            general.capture(_record_of(call), context=call["context"])
        one_step.flush()
        general.flush()
    finally:
        one_step.close()
        general.close()
    assert taken > 300
    fast, slow = _rows(tmp_path / "one.duckdb"), _rows(tmp_path / "general.duckdb")
    assert len(fast) == len(slow) == 400
    assert fast == slow
    assert sum(r["total_cost"] is not None and r["total_cost"] > 0 for r in fast) > 300


def _record_of(call: dict[str, Any]) -> UsageRecord:
    return UsageRecord(
        model=call["model"],
        provider=call["provider"],
        usage=call["usage"],
        framework="langchain",
        ts=call["ts"],
        latency_ms=call["latency_ms"],
        run_id=call["run_id"],
        parent_run_id=call["parent_run_id"],
        trace_id=call["trace_id"],
        metadata=dict(call["metadata"]),
        streamed=call["streamed"],
        request_id=call["request_id"],
    )


def _usual_call() -> dict[str, Any]:
    call = _calls(random.Random(5), 1)[0]
    call.update(model="gpt-4o-mini", provider="openai", context=CallContext(Attribution()))
    call["usage"] = Usage(input_tokens=100, output_tokens=20)
    return call


def _stored(tracker: Tracker) -> int:
    tracker.flush()
    with reading(tracker.path) as con:
        found = con.execute("SELECT count(*) FROM usage").fetchone()
    return int(found[0]) if found else 0


def test_the_usual_call_is_taken_and_stored_once(tracker: Tracker):
    assert tracker.capture_plain("langchain", **_usual_call())
    assert _stored(tracker) == 1


@pytest.mark.parametrize(
    "case",
    [
        "track block",
        "budget",
        "subscriber",
        "price variant",
        "usage issues",
        "no model",
        "unknown model",
        "local provider",
        "long context",
        "unwritable row",
    ],
)
def test_what_needs_the_record_is_left_to_capture(tmp_path: Path, case: str):
    tracker = Tracker(
        tmp_path / "u.duckdb", price_variant="batch" if case == "price variant" else None
    )
    call = _usual_call()
    try:
        if case == "track block":
            with tracker.track(operation="block") as run:
                call["context"] = tracker.call_context()
            assert call["context"].runs == (run,)
        elif case == "budget":
            tracker.budget(usd=100)
        elif case == "subscriber":
            tracker.subscribe(lambda record: None)
        elif case == "usage issues":
            call["usage"] = Usage.from_counts(
                {"input_tokens": 10, "output_tokens": 2, "cache_read_tokens": 50}
            )
            assert call["usage"].issues
        elif case == "no model":
            call["model"] = None
        elif case == "unknown model":
            call["model"] = "no-such-model-xyz"
        elif case == "local provider":
            call.update(model="llama3.2", provider="ollama")
        elif case == "long context":
            call.update(model="gemini-1.5-pro", provider="google")
            call["usage"] = Usage(input_tokens=500_000, output_tokens=10)
        elif case == "unwritable row":
            call["metadata"] = {"big": 2**70}
            call["latency_ms"] = object()  # neither orjson nor the json module writes it
        assert not tracker.capture_plain("langchain", **call)
        assert _stored(tracker) == 0
    finally:
        tracker.close()
