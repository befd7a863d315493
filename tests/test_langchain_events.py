"""LangChain handler: what each callback event says becomes one record, as specified.

Events are fed to a real handler with real langchain-core objects (no model call), and
the records and stored rows are checked against values worked out by hand from the spec:
the canonical usage convention (DESIGN.md) and the catalog's prices.
"""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokentrail.extract import from_langchain_usage_metadata
from tokentrail.usage import Usage


def _result(usage_metadata: Any, response_metadata: Any = None) -> Any:
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, LLMResult

    message = AIMessage("ok")
    # Set after validation: a provider integration can hand over any value.
    message.usage_metadata = usage_metadata
    message.response_metadata = response_metadata or {}
    return LLMResult(generations=[[ChatGeneration(message=message)]])


def _call(handler: Any, usage_metadata: Any, response_metadata: Any = None, **start: Any) -> None:
    """One model call: its start event, optionally streamed tokens, its end event."""
    from langchain_core.messages import HumanMessage

    run_id = uuid.uuid4()
    streamed = start.pop("streamed", ())
    start.setdefault("invocation_params", {"model": "gpt-4o", "_type": "openai-chat"})
    start.setdefault("metadata", {"ls_provider": "openai"})
    handler.on_chat_model_start(
        {"id": ["langchain", "chat_models", "openai", "ChatOpenAI"], "kwargs": {}},
        [[HumanMessage("hello there")]],
        run_id=run_id,
        **start,
    )
    for token in streamed:
        handler.on_llm_new_token(token, run_id=run_id)
    handler.on_llm_end(_result(usage_metadata, response_metadata), run_id=run_id)


# ---------------------------------------------------------------------- usage and cost
M = Decimal(1_000_000)
# gpt-4o, USD per 1M tokens: input 2.5, cached input 1.25, output 10; no cache-write or
# reasoning price of its own (writes fall back to input, reasoning to output).
_USUAL: list[tuple[dict[str, Any], dict[str, int], Decimal]] = [
    (
        {"input_tokens": 1200, "output_tokens": 80, "total_tokens": 1280},
        {"input_tokens": 1200, "output_tokens": 80},
        (1200 * Decimal("2.5") + 80 * 10) / M,
    ),
    (
        {
            "input_tokens": 1200,
            "output_tokens": 80,
            "total_tokens": 1280,
            "input_token_details": {"audio": 0, "cache_read": 1024},
            "output_token_details": {"audio": 0, "reasoning": 64},
        },
        {"input_tokens": 1200, "output_tokens": 80, "cache_read_tokens": 1024},
        (176 * Decimal("2.5") + 1024 * Decimal("1.25") + 16 * 10 + 64 * 10) / M,
    ),
    (
        # Anthropic's TTL split: cache_creation 0, the writes are 5m + 1h.
        {
            "input_tokens": 3000,
            "output_tokens": 10,
            "total_tokens": 3010,
            "input_token_details": {
                "cache_read": 100,
                "cache_creation": 0,
                "ephemeral_5m_input_tokens": 200,
                "ephemeral_1h_input_tokens": 300,
            },
        },
        {
            "input_tokens": 3000,
            "output_tokens": 10,
            "cache_read_tokens": 100,
            "cache_write_tokens": 500,
            "cache_write_1h_tokens": 300,
        },
        (2400 * Decimal("2.5") + 100 * Decimal("1.25") + 500 * Decimal("2.5") + 10 * 10) / M,
    ),
    (
        {"input_tokens": None, "output_tokens": 3, "input_token_details": None},
        {"input_tokens": 0, "output_tokens": 3},
        3 * Decimal(10) / M,
    ),
]


def test_usual_calls_are_stored_with_their_tokens_and_hand_computed_costs(
    tracker: Any, rows: Any
) -> None:
    handler = tracker.langchain(user_id="u", operation="op")
    for i, (usage_metadata, _, _) in enumerate(_USUAL):
        streamed = ["str", "eamed"] if i % 2 else []
        meta = {"model_name": "gpt-4o-2024-08-06", "id": f"chatcmpl-{i}"}
        _call(handler, dict(usage_metadata), meta, streamed=streamed)
    stored = rows(tracker)
    assert len(stored) == len(_USUAL)
    for i, (row, (_, tokens, total)) in enumerate(zip(stored, _USUAL, strict=True)):
        counted = {k: row[k] for k in tokens}
        assert counted == tokens
        assert row["total_tokens"] == tokens["input_tokens"] + tokens["output_tokens"]
        assert row["total_cost"] == total, i
        assert (row["model"], row["priced_model"], row["provider"]) == (
            "gpt-4o-2024-08-06",
            "gpt-4o",
            "openai",
        )
        assert (row["user_id"], row["operation"], row["framework"]) == ("u", "op", "langchain")
        assert (row["request_id"], row["status"]) == (f"chatcmpl-{i}", "ok")
        assert row["streamed"] is bool(i % 2)
        assert row["latency_ms"] is not None and row["latency_ms"] >= 0


@pytest.mark.parametrize(
    ("response_metadata", "variant"),
    [
        ({"service_tier": "default"}, None),
        ({"service_tier": "PRIORITY"}, "priority"),
        ({"service_tier": "flex"}, "flex"),
        ({}, None),
    ],
)
def test_the_service_tier_the_response_names_is_the_price_variant(
    tracker: Any, captured: list[Any], response_metadata: dict[str, Any], variant: str | None
) -> None:
    usage = {"input_tokens": 10, "output_tokens": 2, "total_tokens": 12}
    _call(tracker.langchain(), usage, response_metadata)
    [record] = captured
    assert record.price_variant == variant


def test_a_tier_named_in_the_usage_details_is_folded_in_and_sets_the_variant(
    tracker: Any, captured: list[Any]
) -> None:
    usage = {
        "input_tokens": 100,
        "output_tokens": 20,
        "input_token_details": {"priority_cache_read": 60},
        "output_token_details": {"priority_reasoning": 5},
    }
    _call(tracker.langchain(), usage)
    [record] = captured
    assert record.usage == Usage(
        input_tokens=100, output_tokens=20, cache_read_tokens=60, reasoning_tokens=5
    )
    assert record.price_variant == "priority"


def _spec_usage(um: dict[str, Any]) -> Usage | None:
    """The canonical usage of a ``usage_metadata`` whose counts are plain ints (or None),
    written from the mapping table of ``extract/langchain.py``; ``None`` when not plain."""
    top = {"input_tokens", "output_tokens", "total_tokens", "input_token_details"}
    top |= {"output_token_details", "total_cost"}
    inp = um.get("input_token_details") or {}
    out = um.get("output_token_details") or {}
    if not um.keys() <= top or type(inp) is not dict or type(out) is not dict:
        return None
    if not inp.keys() <= {"cache_read", "cache_creation", "audio", "e5", "e1"}:
        return None
    if all(um.get(k) is None for k in ("input_tokens", "output_tokens", "total_tokens")):
        return None

    def n(value: Any) -> int:
        return 0 if value is None else int(value)

    e5, e1 = n(inp.get("e5")), n(inp.get("e1"))
    return Usage.from_counts(
        input_tokens=n(um.get("input_tokens")),
        output_tokens=n(um.get("output_tokens")),
        cache_read_tokens=n(inp.get("cache_read")),
        cache_write_tokens=max(n(inp.get("cache_creation")), e5 + e1),
        cache_write_1h_tokens=e1,
        input_audio_tokens=n(inp.get("audio")),
        reasoning_tokens=n(out.get("reasoning")),
        output_audio_tokens=n(out.get("audio")),
    )


_COUNT = st.one_of(st.none(), st.integers(min_value=0, max_value=5000))
_ODD_COUNT = st.sampled_from([-1, True, 7.5, "many", 2**64])


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "input_tokens": _COUNT,
            "output_tokens": _COUNT,
            "total_tokens": _COUNT,
            "input_token_details": st.one_of(
                st.none(),
                st.dictionaries(
                    st.sampled_from(["cache_read", "cache_creation", "audio", "e5", "e1"]),
                    _COUNT,
                ),
            ),
            "output_token_details": st.dictionaries(
                st.sampled_from(["reasoning", "audio"]), _COUNT
            ),
        },
    ),
    st.one_of(st.none(), _ODD_COUNT),
)
def test_usage_metadata_reads_as_the_mapping_table_says_and_obeys_the_subset_rule(
    um: dict[str, Any], odd: Any
) -> None:
    # The strategy's short names for Anthropic's TTL keys, spelled out.
    details = um.get("input_token_details")
    if isinstance(details, dict):
        renamed = {"e5": "ephemeral_5m_input_tokens", "e1": "ephemeral_1h_input_tokens"}
        um["input_token_details"] = {renamed.get(k, k): v for k, v in details.items()}
    spec = _spec_usage({**um, "input_token_details": details} if details else um)
    read = from_langchain_usage_metadata(um)
    assert read == spec
    if odd is not None:  # an odd count is fixed and reported, and the rule still holds
        broken = from_langchain_usage_metadata({**um, "output_tokens": odd})
        assert broken is not None and broken.issues
        assert broken.reasoning_tokens + broken.output_audio_tokens <= broken.output_tokens


def test_a_count_too_large_to_be_real_is_clamped_and_reported() -> None:
    usage = from_langchain_usage_metadata({"input_tokens": 2**64, "output_tokens": 5})
    assert usage is not None and usage.input_tokens == 2**53 and usage.issues


# ---------------------------------------------------------------------- starts
_OPENAI = {"id": ["langchain", "chat_models", "openai", "ChatOpenAI"], "kwargs": {}}
_GROQ_BY_URL = {
    "id": ["langchain", "chat_models", "openai", "ChatOpenAI"],
    "kwargs": {"base_url": "https://api.groq.com/openai/v1"},
}


@pytest.mark.parametrize(
    ("serialized", "params", "meta", "model", "provider"),
    [
        (_OPENAI, None, None, None, "openai"),
        (_OPENAI, {"model": "gpt-4o-mini"}, {"ls_model_name": "gpt-4o"}, "gpt-4o-mini", "openai"),
        (_GROQ_BY_URL, {"model": "llama-3.3-70b-versatile"}, None, "llama-3.3-70b-versatile", "groq"),
        (
            {"id": ["langchain_anthropic", "ChatAnthropic"], "kwargs": {}},
            {"model_name": "claude-haiku-4-5", "model": ""},
            None,
            "claude-haiku-4-5",
            "anthropic",
        ),
        (_OPENAI, {"model": 12, "base_url": "https://api.deepseek.com"}, None, "12", "deepseek"),
        (
            _OPENAI,
            {"azure_deployment": "prod-gpt", "endpoint": "https://x.openai.azure.com"},
            None,
            "prod-gpt",
            "azure",
        ),
        (None, {"base_url": "http://localhost:11434"}, {"ls_model_name": "llama3.2"}, "llama3.2", "ollama"),
        ({"name": "ChatMistralAI"}, None, {"ls_model_name": "mistral-large-latest"}, "mistral-large-latest", "mistral"),
        (
            None,
            {"_type": "x"},
            {"ls_provider": "Google_GenAI", "ls_model_name": "gemini-2.5-pro"},
            "gemini-2.5-pro",
            "google",
        ),
    ],
)  # fmt: skip
def test_start_reads_the_model_and_provider(
    tracker: Any, serialized: Any, params: Any, meta: Any, model: Any, provider: Any
) -> None:
    from langchain_core.messages import HumanMessage

    handler = tracker.langchain()
    for _ in range(2):  # the second time from the memo
        run_id = uuid.uuid4()
        kwargs = {} if params is None else {"invocation_params": dict(params)}
        handler.on_chat_model_start(
            serialized, [[HumanMessage("hi")]], run_id=run_id, metadata=meta, **kwargs
        )
        call = handler._calls.calls.pop(run_id)
        assert (call.model, call.provider) == (model, provider)


def test_provider_memo_keeps_models_of_one_serialized_dict_apart(tracker: Any) -> None:
    from langchain_core.messages import HumanMessage

    handler = tracker.langchain()
    seen = []
    for params in (
        {"model": "gpt-4o"},
        {"model": "gpt-4o", "base_url": "https://api.groq.com/openai/v1"},
        {"model": "gpt-4o"},
    ):
        run_id = uuid.uuid4()
        handler.on_chat_model_start(
            _OPENAI, [[HumanMessage("hi")]], run_id=run_id, invocation_params=params
        )
        seen.append(handler._calls.calls.pop(run_id).provider)
    assert seen == ["openai", "groq", "openai"]


@pytest.mark.parametrize(
    ("tags", "meta", "expected"),
    [
        (None, None, ("handler", None, None, ())),
        ([], {"ls_provider": "openai"}, ("handler", None, None, ())),
        (["seq:step:1", "langsmith:hidden"], {}, ("handler", None, None, ())),
        (["mine"], {}, ("handler", None, None, ("mine",))),
        (None, {"user_id": "meta-user"}, ("meta-user", None, None, ())),
        (None, {"session_id": "s"}, ("handler", "s", None, ())),
        (None, {"operation": "op", "user_id": ""}, ("handler", None, "op", ())),
        (None, {"user_id": None}, ("handler", None, None, ())),
    ],
)
def test_the_call_s_own_attribution_wins_over_the_handler_s(
    tracker: Any, captured: list[Any], tags: Any, meta: Any, expected: tuple[Any, ...]
) -> None:
    handler = tracker.langchain(user_id="handler")
    usage = {"input_tokens": 3, "output_tokens": 1, "total_tokens": 4}
    _call(handler, usage, tags=tags, metadata=meta)
    [r] = captured
    assert (r.user_id, r.session_id, r.operation, r.tags) == expected


def test_trace_id_of_a_child_run_is_its_root_run(tracker: Any, captured: list[Any]) -> None:
    handler = tracker.langchain()
    chain, step, unseen = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    handler.on_chain_start(None, {}, run_id=chain)
    handler.on_chain_start(None, {}, run_id=step, parent_run_id=chain)
    usage = {"input_tokens": 3, "output_tokens": 1, "total_tokens": 4}
    for parent in (chain, step, unseen):
        _call(handler, usage, parent_run_id=parent)
    assert [(r.parent_run_id, r.trace_id) for r in captured] == [
        (str(chain), str(chain)),
        (str(step), str(chain)),
        (str(unseen), str(unseen)),
    ]
    handler.on_chain_end({}, run_id=step)
    handler.on_chain_end({}, run_id=chain)
    assert not handler._calls.roots


# ---------------------------------------------------------------------- threads
def test_one_record_per_call_when_threads_race_on_its_events(
    tracker: Any, captured: list[Any]
) -> None:
    """Every start and every end sent by six threads at once (two handlers of one tracker,
    as a handler attached twice gets them): each call is opened once and recorded once."""
    from langchain_core.messages import HumanMessage

    handlers = [tracker.langchain(), tracker.langchain()]
    result = _result({"input_tokens": 3, "output_tokens": 1, "total_tokens": 4})
    run_ids = [uuid.uuid4() for _ in range(400)]

    def race(event: Any) -> None:
        barrier = threading.Barrier(6)

        def work(offset: int) -> None:
            barrier.wait()
            for i, run_id in enumerate(run_ids):
                event(handlers[(i + offset) % 2], run_id)

        threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    race(lambda h, r: h.on_chat_model_start(None, [[HumanMessage("hi")]], run_id=r))
    opened = list(handlers[0]._calls.calls.values())
    race(lambda h, r: h.on_llm_end(result, run_id=r))
    assert len(opened) == len(run_ids) and not handlers[1]._calls.calls
    assert sorted(r.run_id for r in captured) == sorted(str(r) for r in run_ids)
