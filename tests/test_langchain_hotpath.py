"""LangChain handler: the fast readers of the usual call say what the general ones say.

The handler reads the usual start (dict invocation params, string metadata) and the usual
end (one chat generation with a plain ``usage_metadata``) inline, and memoizes the provider
per serialized model and endpoint. Each test here feeds the same events to the fast path and
to the general helpers it shortcuts, shape by shape, and checks the answers are the same
(and that the fast path is actually taken for the usual shapes, so the comparison means
something).
"""

from __future__ import annotations

import itertools
import threading
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tokentrail.integrations.langchain as lc
from tests.conftest import spy_capture_plain
from tokentrail.extract import from_langchain_usage_metadata
from tokentrail.extract.langchain import general_usage_metadata, plain_usage_metadata
from tokentrail.providers import infer_provider
from tokentrail.usage import Usage

# Fields the two paths fill at different instants or at random.
_VOLATILE = {"id", "latency_ms"}


def _fields(record: Any) -> dict[str, Any]:
    return {k: getattr(record, k) for k in type(record).__slots__ if k not in _VOLATILE}


def _result(
    usage_metadata: Any,
    response_metadata: Any = None,
    llm_output: Any = None,
    layout: str = "one",
) -> Any:
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, Generation, LLMResult

    def generation() -> Any:
        message = AIMessage("ok")
        # Set after validation: a provider integration can hand over any value.
        message.usage_metadata = usage_metadata
        message.response_metadata = response_metadata
        return ChatGeneration(message=message)

    groups: list[list[Any]] = {
        "one": [[generation()]],
        "two choices": [[generation(), generation()]],
        "two groups": [[generation()], [generation()]],
        "none": [],
        "empty group": [[]],
        "text": [[Generation(text="ok")]],
    }[layout]
    return LLMResult(generations=groups, llm_output=llm_output)


def _open_call(handler: Any, texts: list[str] | None = None) -> Any:
    """A call in flight, opened by a real start event; removed from the table."""
    from langchain_core.messages import HumanMessage

    run_id = uuid.uuid4()
    handler.on_chat_model_start(
        {"id": ["langchain", "chat_models", "openai", "ChatOpenAI"], "kwargs": {}},
        [[HumanMessage("hello there")]],
        run_id=run_id,
        invocation_params={"model": "gpt-4o-mini", "_type": "openai-chat"},
        metadata={"ls_provider": "openai", "tenant": "acme"},
    )
    call = handler._calls.calls.pop(run_id)
    call.texts = texts
    return call


_STANDARD: list[Any] = [
    {"input_tokens": 1200, "output_tokens": 80, "total_tokens": 1280},
    {
        "input_tokens": 1200,
        "output_tokens": 80,
        "total_tokens": 1280,
        "input_token_details": {"audio": 0, "cache_read": 1024},
        "output_token_details": {"audio": 0, "reasoning": 64},
    },
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
    {"input_tokens": 5, "output_tokens": 1, "input_token_details": {"cache_creation": 4}},
    {"input_tokens": 50, "output_tokens": 7, "input_token_details": {"audio": 50}},
    {"input_tokens": 50, "output_tokens": 7, "output_token_details": {"audio": 3, "reasoning": 4}},
    {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0},
    {"input_tokens": None, "output_tokens": 3, "input_token_details": None},
]

_ODD: list[Any] = [
    {"input_tokens": True, "output_tokens": 1},
    {"input_tokens": 10.0, "output_tokens": 1},
    {"input_tokens": 10, "output_tokens": -1},
    {"input_tokens": 10, "output_tokens": 1, "input_token_details": {"cache_read": -1}},
    {"input_tokens": 10, "output_tokens": 1, "input_token_details": {"cache_read": 11}},
    {"input_tokens": 10, "output_tokens": 1, "input_token_details": {"audio": 11}},
    {"input_tokens": 10, "output_tokens": 4, "output_token_details": {"reasoning": 3, "audio": 2}},
    {"input_tokens": 10, "output_tokens": 4, "input_token_details": {"priority_cache_read": 2}},
    {"input_tokens": 10, "output_tokens": 4, "input_token_details": [("cache_read", 2)]},
    {"input_tokens": 10, "output_tokens": 4, "service_tier": "priority"},
    {"input_tokens": 10, "output_tokens": 4, "total_cost": 0},  # a cache replay
    {"input_tokens": 10, "output_tokens": 4, "total_cost": None},
    {"input_tokens": 2**70, "output_tokens": 4},
    {"input_tokens": 9, "output_tokens": 3, "input_token_details": {}, "total_cost": 0.5},
    {},
    None,
    [("input_tokens", 1)],
]

_RESPONSE_METADATA: list[Any] = [
    {"model_name": "gpt-4o-mini-2024-07-18"},
    {"model_name": "gpt-4o", "id": "chatcmpl-1", "service_tier": "default"},
    {"model": "llama3.2", "request_id": "req_1", "id": "x"},
    {"model_name": "", "model": "gpt-4o", "request_id": "", "id": "msg_1"},
    {"model_name": 7, "service_tier": "PRIORITY"},
    {"model_name": None, "service_tier": "flex"},
    {"service_tier": "batch"},
    {},
    None,
]

_LLM_OUTPUT: list[Any] = [None, {"model_name": "from-llm-output", "token_usage": {}}]


class _Count(int):
    """An int subclass: not a plain count (the general reader decides about it)."""


def test_plain_record_is_the_general_record(tracker: Any) -> None:
    handler = tracker.langchain()
    fast = 0
    cases = itertools.product(
        [*_STANDARD, *_ODD, {"input_tokens": _Count(3), "output_tokens": 1}],
        _RESPONSE_METADATA,
        _LLM_OUTPUT,
        ("one", "two choices", "two groups", "none", "empty group", "text"),
        (None, ["str", "eamed"]),
    )
    for um, meta, llm_output, layout, texts in cases:
        call = _open_call(handler, texts)
        response = _result(dict(um) if isinstance(um, dict) else um, meta, llm_output, layout)
        plain = lc._plain_result(call, response)
        record = None if plain is None else lc._plain_record_of(call, plain)
        expected = handler._record(call, response, "ok", None)
        if record is None:
            continue
        fast += any(um is standard for standard in _STANDARD) and layout == "one"
        assert _fields(record) == _fields(expected), (um, meta, llm_output, layout)
        assert record.latency_ms is not None and record.latency_ms >= 0
    # Every standard usage in the one-generation layout takes it, whatever else is said.
    assert fast == len(_STANDARD) * len(_RESPONSE_METADATA) * len(_LLM_OUTPUT) * 2


def test_on_llm_end_stores_the_usual_call_in_one_step_as_the_general_path_would(
    tracker: Any, rows: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = tracker.langchain(user_id="u", operation="op")
    for general in (False, True):
        if general:  # no one-step capture: the record built and captured
            monkeypatch.setattr(tracker, "capture_plain", lambda *a: False)
        else:
            taken = spy_capture_plain(tracker, monkeypatch)
        for i, um in enumerate(_STANDARD):
            call = _open_call(handler, ["str", "eamed"] if i % 2 else None)
            handler._calls.calls[uuid.UUID(call.run_id)] = call
            response = _result(dict(um), {"model_name": "gpt-4o-2024-08-06", "id": "r1"})
            handler.on_llm_end(response, run_id=uuid.UUID(call.run_id))
    assert taken == [True] * len(_STANDARD)
    stored = rows(tracker)
    assert len(stored) == 2 * len(_STANDARD)
    # Both paths store when the call started (read back as naive UTC).
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    assert all(abs(row["ts"] - now) < timedelta(minutes=1) for row in stored)
    volatile = {"id", "ts", "latency_ms", "run_id", "trace_id"}
    fast, slow = (
        [{k: v for k, v in row.items() if k not in volatile} for row in part]
        for part in (stored[: len(_STANDARD)], stored[len(_STANDARD) :])
    )
    assert fast == slow
    assert all(row["total_cost"] is not None for row in fast)
    assert [row["streamed"] for row in fast] == [bool(i % 2) for i in range(len(_STANDARD))]


def _reference_plain(um: Any) -> Usage | None:
    """What the one-pass reader decides, written plainly (the spec): a plain dict with a
    count set, standard detail keys only (a falsy details value is none), exact-int or None
    counts within range, consistent subsets."""
    top = {"input_tokens", "output_tokens", "total_tokens", "input_token_details"}
    top |= {"output_token_details", "total_cost"}
    if type(um) is not dict or not um.keys() <= top:
        return None
    if all(um.get(k) is None for k in ("input_tokens", "output_tokens", "total_tokens")):
        return None
    inp = um.get("input_token_details") or {}
    out = um.get("output_token_details") or {}
    if type(inp) is not dict or type(out) is not dict:
        return None
    if not inp.keys() <= {
        "cache_read",
        "cache_creation",
        "audio",
        "ephemeral_5m_input_tokens",
        "ephemeral_1h_input_tokens",
    } or not out.keys() <= {"reasoning", "audio"}:
        return None
    names = ("input_tokens", "output_tokens")
    inp_names = ("cache_read", "cache_creation", "ephemeral_5m_input_tokens")
    inp_names += ("ephemeral_1h_input_tokens", "audio")
    raw = [um.get(n) for n in names] + [inp.get(n) for n in inp_names]
    raw += [out.get("reasoning"), out.get("audio")]
    values = tuple(0 if v is None else v for v in raw)  # None (or absent) is 0
    if tuple(map(type, values)) != (int,) * 9 or min(values) < 0:
        return None
    if max(values) > 2**53:  # too large to be a count: the extractor clamps and reports it
        return None
    total_in, total_out, read, creation, w5, w1, audio_in, reasoning, audio_out = values
    writes = max(creation, w5 + w1)
    if read + writes > total_in or audio_in > total_in or reasoning + audio_out > total_out:
        return None
    return Usage(
        input_tokens=total_in,
        output_tokens=total_out,
        cache_read_tokens=read,
        cache_write_tokens=writes,
        cache_write_1h_tokens=w1,
        input_audio_tokens=audio_in,
        reasoning_tokens=reasoning,
        output_audio_tokens=audio_out,
    )


_COUNT = st.one_of(
    st.integers(min_value=0, max_value=5000),
    st.integers(min_value=-3, max_value=-1),
    st.sampled_from([None, 0, False, True, 0.0, 7.0, "", "12", _Count(5), 2**64]),
)


def _details(keys: list[str]) -> Any:
    return st.one_of(
        st.none(),
        st.dictionaries(st.sampled_from(keys), _COUNT, max_size=len(keys)),
        st.just([]),
    )


_USAGE_METADATA = st.fixed_dictionaries(
    {},
    optional={
        "input_tokens": _COUNT,
        "output_tokens": _COUNT,
        "total_tokens": _COUNT,
        "input_token_details": _details(
            [
                "cache_read",
                "cache_creation",
                "audio",
                "ephemeral_5m_input_tokens",
                "ephemeral_1h_input_tokens",
                "priority_cache_read",
            ]
        ),
        "output_token_details": _details(["reasoning", "audio", "flex_reasoning"]),
        "total_cost": st.sampled_from([0, 0.0, 1.5, None]),
        "service_tier": st.just("priority"),
    },
)


@settings(max_examples=400, deadline=None)
@given(_USAGE_METADATA)
def test_the_one_pass_reader_decides_as_specified_and_never_changes_the_answer(
    um: dict[str, Any],
) -> None:
    plain = plain_usage_metadata(um)
    assert plain == _reference_plain(um)
    general = general_usage_metadata(um)
    if plain is not None:  # what it decides is exactly what the general reader says
        assert plain == general
    assert from_langchain_usage_metadata(um) == general  # the public reader, every shape


def test_plain_usage_check_accepts_every_consistent_plain_usage() -> None:
    # The fast path must be the one taken for real providers' usual payloads.
    for um in _STANDARD:
        plain = plain_usage_metadata(um)
        assert plain is not None and plain == general_usage_metadata(um)


# ---------------------------------------------------------------------- starts
_SERIALIZED: list[Any] = [
    {"id": ["langchain", "chat_models", "openai", "ChatOpenAI"], "kwargs": {}},
    {
        "id": ["langchain", "chat_models", "openai", "ChatOpenAI"],
        "kwargs": {"base_url": "https://api.groq.com/openai/v1"},
    },
    {"id": ["langchain_anthropic", "ChatAnthropic"], "kwargs": {}},
    {"name": "ChatMistralAI"},
    None,
]

_PARAMS: list[Any] = [
    None,
    {"_type": "openai-chat", "stop": None},
    {"model": "gpt-4o-mini", "_type": "openai-chat"},
    {"model_name": "claude-haiku-4-5", "model": ""},
    {"model": 12, "base_url": "https://api.deepseek.com"},
    {"azure_deployment": "prod-gpt", "endpoint": "https://x.openai.azure.com"},
    {"base_url": "http://localhost:11434"},
    {"api_base": ""},
]

_META: list[Any] = [
    None,
    {"ls_provider": "openai", "ls_model_name": "gpt-4o", "ls_model_type": "chat"},
    {"ls_provider": "", "ls_model_name": ""},
    {"ls_provider": 3, "ls_model_name": 4},
    {"ls_provider": "Google_GenAI", "ls_model_name": "gemini-2.5-pro"},
    {"ls_model_name": "mistral-large-latest"},
]


def _general_start(serialized: Any, params: Any, meta: Any) -> tuple[Any, Any]:
    """Model and provider the way the general helpers read them (no memo, no shortcut)."""
    params = params or {}
    meta = meta or {}
    model = lc._model_from_start(params, meta)
    provider = infer_provider(
        ls_provider=lc._str(meta.get("ls_provider")),
        model=model,
        base_url=lc._params_base_url(params) or lc._kwargs_base_url(serialized),
        class_name=lc._class_name(serialized),
    )
    return model, provider


def test_start_reads_model_and_provider_as_the_general_helpers(tracker: Any) -> None:
    from langchain_core.messages import HumanMessage

    handler = tracker.langchain()
    # Every combination twice, the second time from the memo (and in another order).
    cases = list(itertools.product(_SERIALIZED, _PARAMS, _META))
    for serialized, params, meta in [*cases, *reversed(cases)]:
        run_id = uuid.uuid4()
        kwargs = {} if params is None else {"invocation_params": dict(params)}
        handler.on_chat_model_start(
            serialized,
            [[HumanMessage("hi")]],
            run_id=run_id,
            metadata=None if meta is None else dict(meta),
            **kwargs,
        )
        call = handler._calls.calls.pop(run_id)
        assert (call.model, call.provider) == _general_start(serialized, params, meta), (
            serialized,
            params,
            meta,
        )


def test_provider_memo_keeps_models_of_one_serialized_dict_apart(tracker: Any) -> None:
    from langchain_core.messages import HumanMessage

    handler = tracker.langchain()
    serialized = {"id": ["langchain", "chat_models", "openai", "ChatOpenAI"], "kwargs": {}}
    seen = []
    for params in (
        {"model": "gpt-4o"},
        {"model": "gpt-4o", "base_url": "https://api.groq.com/openai/v1"},
        {"model": "gpt-4o"},
    ):
        run_id = uuid.uuid4()
        handler.on_chat_model_start(
            serialized, [[HumanMessage("hi")]], run_id=run_id, invocation_params=params
        )
        seen.append(handler._calls.calls.pop(run_id).provider)
    assert seen == ["openai", "groq", "openai"]


def test_start_attribution_shortcut_matches_the_general_reader(
    tracker: Any, captured: list[Any]
) -> None:
    from langchain_core.messages import AIMessage, HumanMessage
    from langchain_core.outputs import ChatGeneration, LLMResult

    handler = tracker.langchain(user_id="handler")
    usage = {"input_tokens": 3, "output_tokens": 1, "total_tokens": 4}
    cases: list[tuple[Any, Any]] = [
        (None, None),
        ([], {"ls_provider": "openai"}),
        (["seq:step:1", "langsmith:hidden"], {}),
        (["mine"], {}),
        (None, {"user_id": "meta-user"}),
        (None, {"session_id": "s"}),
        (None, {"operation": "op", "user_id": ""}),
        (None, {"user_id": None}),
    ]
    for tags, meta in cases:
        run_id = uuid.uuid4()
        handler.on_chat_model_start(
            None, [[HumanMessage("hi")]], run_id=run_id, tags=tags, metadata=meta
        )
        handler.on_llm_end(
            LLMResult(
                generations=[[ChatGeneration(message=AIMessage("ok", usage_metadata=usage))]]
            ),
            run_id=run_id,
        )
    got = [(r.user_id, r.session_id, r.operation, r.tags) for r in captured]
    expected = []
    for tags, meta in cases:
        explicit = lc._attribution_from(meta or {}, tags).over(handler.attribution)
        ctx = tracker.call_context(explicit)
        a = ctx.attribution
        expected.append((a.user_id, a.session_id, a.operation, a.tags))
    assert got == expected
    assert got[0] == ("handler", None, None, ())
    assert got[3][3] == ("mine",) and got[4][0] == "meta-user"


def test_trace_id_of_a_child_run_is_its_root_run(tracker: Any, captured: list[Any]) -> None:
    from langchain_core.messages import AIMessage, HumanMessage
    from langchain_core.outputs import ChatGeneration, LLMResult

    handler = tracker.langchain()
    chain, step, unseen = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    handler.on_chain_start(None, {}, run_id=chain)
    handler.on_chain_start(None, {}, run_id=step, parent_run_id=chain)
    usage = {"input_tokens": 3, "output_tokens": 1, "total_tokens": 4}
    for parent in (chain, step, unseen):
        run_id = uuid.uuid4()
        handler.on_chat_model_start(
            None, [[HumanMessage("hi")]], run_id=run_id, parent_run_id=parent
        )
        handler.on_llm_end(
            LLMResult(
                generations=[[ChatGeneration(message=AIMessage("ok", usage_metadata=usage))]]
            ),
            run_id=run_id,
        )
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
    from langchain_core.messages import AIMessage, HumanMessage
    from langchain_core.outputs import ChatGeneration, LLMResult

    handlers = [tracker.langchain(), tracker.langchain()]
    usage = {"input_tokens": 3, "output_tokens": 1, "total_tokens": 4}
    result = LLMResult(
        generations=[[ChatGeneration(message=AIMessage("ok", usage_metadata=usage))]]
    )
    run_ids = [uuid.uuid4() for _ in range(400)]
    opened: list[Any] = []

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
    opened.extend(handlers[0]._calls.calls.values())
    race(lambda h, r: h.on_llm_end(result, run_id=r))
    assert len(opened) == len(run_ids) and not handlers[1]._calls.calls
    assert sorted(r.run_id for r in captured) == sorted(str(r) for r in run_ids)


def test_a_count_too_large_to_be_real_goes_to_the_extractor() -> None:
    um = {"input_tokens": 2**64, "output_tokens": 5}
    assert plain_usage_metadata(um) is None
    general = from_langchain_usage_metadata(um)
    assert general is not None and general.input_tokens == 2**53 and general.issues
