"""LlamaIndex integration: the fast paths of the usual call say what the general ones say.

The usual call is read in fewer steps: the event handler hands the chat start and end
events straight to the recorder, ``_identify`` reads model, endpoint and provider in one
function, the start takes the attached handle's cached context inline, and
``_plain_result`` reads the usual OpenAI response (``raw`` is the SDK's response with its
``CompletionUsage``) in one pass. Each test feeds the same input to a fast path and to the
general code it shortcuts, shape by shape, and checks the answers are the same (and that the
fast path is taken for the usual shapes, so the comparison means something).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
)
from llama_index.core.callbacks import CallbackManager
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.custom import CustomLLM
from llama_index_instrumentation.dispatcher import instrument_tags
from openai.types.chat import ChatCompletion
from openai.types.completion import Completion
from pydantic import BaseModel, ConfigDict

import tokentrail.integrations.llamaindex_recorder as lr
from tests.conftest import spy_capture_plain
from tests.test_llamaindex_readers import _completion
from tokentrail.integrations import llamaindex_handlers as lh
from tokentrail.records import UsageRecord

pytestmark = pytest.mark.usefixtures("llamaindex_left_clean")

# Fields the two paths fill at different instants or at random.
_VOLATILE = {"id", "latency_ms"}


def _fields(record: Any) -> dict[str, Any]:
    return {k: getattr(record, k) for k in type(record).__slots__ if k not in _VOLATILE}


# An OpenAI chat completion body (the same helper as the reader tests').
_body = _completion


def _call(kind: str = "chat", provider: str | None = "openai") -> lr.Call:
    return lr.Call(
        "span-1",
        kind,  # type: ignore[arg-type]
        "events",
        None,  # type: ignore[arg-type]
        "gpt-4o-mini",
        provider,
        datetime(2025, 1, 2, tzinfo=timezone.utc),
        lr._clock(),
        "parent-span",
        "root-span",
        [ChatMessage(role="user", content="hello there")] if kind == "chat" else None,
        "hello there" if kind == "completion" else None,
    )


def _general(call: lr.Call, response: Any) -> UsageRecord:
    rec = lr.Recorder(None, None)  # type: ignore[arg-type]
    return rec._record(call, response, "ok", None, ())


def _same(call: lr.Call, response: Any) -> UsageRecord | None:
    """The fast record, checked equal to the general one when the fast path takes it."""
    plain = lr._plain_result(call, response)
    fast = None if plain is None else lr._plain_record_of(call, plain)
    general = _general(call, response)
    if fast is not None:
        assert _fields(fast) == _fields(general)
        assert fast.latency_ms is not None and fast.latency_ms >= 0
    return fast


def _chat(raw: Any, **extra: Any) -> ChatResponse:
    return ChatResponse(message=ChatMessage(role="assistant", content="ok"), raw=raw, **extra)


_TOKENS = {"prompt_tokens": 1200, "completion_tokens": 80, "total_tokens": 1280}

# Usage blocks the fast path reads itself.
USUAL: list[Any] = [
    _TOKENS,
    {
        **_TOKENS,
        "prompt_tokens_details": {"cached_tokens": 1000, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 16, "audio_tokens": 0},
    },
    {
        **_TOKENS,
        "prompt_tokens_details": {"cached_tokens": 1000, "audio_tokens": 5},
        "completion_tokens_details": {
            "reasoning_tokens": 16,
            "audio_tokens": 4,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
    # Cache writes, as OpenAI-compatible servers report them.
    {**_TOKENS, "prompt_tokens_details": {"cached_tokens": 10, "cache_write_tokens": 20}},
    {**_TOKENS, "prompt_tokens_details": None, "completion_tokens_details": None},
    {**_TOKENS, "completion_tokens_details": {"reasoning_tokens": 80}},
    {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    # An unknown key in the details: declared fields are read all the same.
    {**_TOKENS, "prompt_tokens_details": {"cached_tokens": 3, "future_tokens": 9}},
]

# Usage blocks the fast path leaves to the general reader (which validates and flags).
ODD: list[Any] = [
    {**_TOKENS, "prompt_tokens_details": {"cached_tokens": 1300}},
    {**_TOKENS, "prompt_tokens_details": {"cached_tokens": 700, "cache_write_tokens": 600}},
    {**_TOKENS, "prompt_tokens_details": {"audio_tokens": 1201}},
    {**_TOKENS, "completion_tokens_details": {"reasoning_tokens": 70, "audio_tokens": 20}},
    {"prompt_tokens": -1, "completion_tokens": 3},
    {"prompt_tokens": True, "completion_tokens": 3},
    {"prompt_tokens": "12", "completion_tokens": 3},
    {"prompt_tokens": 12.0, "completion_tokens": 3},
    {"prompt_tokens": 2**60, "completion_tokens": 3},
    {"prompt_tokens": 10, "completion_tokens": 3, "prompt_tokens_details": {"cached_tokens": -2}},
    {**_TOKENS, "service_tier": "batch"},  # a tier in the usage block (an extra key)
]


@pytest.mark.parametrize("usage", USUAL)
@pytest.mark.parametrize("tier", [None, "default", "flex", "priority", "scale", "auto"])
@pytest.mark.parametrize("kind", ["chat", "completion"])
def test_plain_record_is_the_general_record_for_the_usual_openai_response(
    usage: Any, tier: str | None, kind: str
) -> None:
    raw = ChatCompletion.model_validate(_body(usage, service_tier=tier))
    response: Any = _chat(raw) if kind == "chat" else CompletionResponse(text="ok", raw=raw)
    fast = _same(_call(kind), response)
    assert fast is not None  # taken: the comparison above was made
    # Also when the SDK built the response without validation (it uses construct()),
    # where a tier can be in any case.
    upper = tier.upper() if tier else None
    raw = ChatCompletion.construct(**_body(usage, service_tier=upper))
    assert _same(_call(kind), _chat(raw)) is not None


@pytest.mark.parametrize("usage", ODD)
def test_plain_record_leaves_odd_counts_to_the_general_reader(usage: Any) -> None:
    raw = ChatCompletion.construct(**_body(usage))
    assert _same(_call(), _chat(raw)) is None


def test_plain_record_reads_none_counts_as_zero_as_the_general_reader_does() -> None:
    usage = {
        "prompt_tokens": None,
        "completion_tokens": 3,
        "prompt_tokens_details": {"cached_tokens": None, "audio_tokens": None},
        "completion_tokens_details": {"reasoning_tokens": None},
    }
    fast = _same(_call(), _chat(ChatCompletion.construct(**_body(usage))))
    assert fast is not None and fast.usage.input_tokens == 0 and fast.usage.output_tokens == 3


@pytest.mark.parametrize("where", ["usage", "prompt details", "completion details"])
def test_plain_record_leaves_a_count_missing_from_the_object_to_the_general_reader(
    where: str,
) -> None:
    raw = ChatCompletion.construct(**_body(USUAL[1]))
    assert raw.usage is not None
    holder, name = {
        "usage": (raw.usage, "prompt_tokens"),
        "prompt details": (raw.usage.prompt_tokens_details, "cached_tokens"),
        "completion details": (raw.usage.completion_tokens_details, "reasoning_tokens"),
    }[where]
    del holder.__dict__[name]
    assert lr._plain_result(_call(), _chat(raw)) is None


def test_plain_record_with_the_copied_counts_next_to_the_raw_response() -> None:
    raw = ChatCompletion.model_validate(_body(USUAL[1]))
    response = _chat(raw, additional_kwargs={"prompt_tokens": 1, "completion_tokens": 2})
    assert _same(_call(), response) is not None


def _anthropic_message() -> Any:
    from anthropic.types import Message

    return Message.model_validate(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "ok"}],
            "stop_reason": "end_turn",
            "usage": {
                "input_tokens": 20,
                "output_tokens": 7,
                "cache_read_input_tokens": 1000,
                "cache_creation_input_tokens": 300,
            },
        }
    )


def _with_usage(usage: Any) -> ChatCompletion:
    """A response carrying ``usage`` as given (construct() would convert a dict)."""
    raw = ChatCompletion.construct(**_body(None))
    raw.__dict__["usage"] = usage
    return raw


def _declined() -> list[tuple[str, lr.Call, Any]]:
    usual = ChatCompletion.model_validate(_body(USUAL[1]))
    legacy = Completion.model_validate(
        {
            "id": "cmpl-1",
            "object": "text_completion",
            "created": 1,
            "model": "gpt-3.5-turbo-instruct",
            "choices": [{"index": 0, "text": "ok", "finish_reason": "stop", "logprobs": None}],
            "usage": _TOKENS,
        }
    )
    message = _anthropic_message()
    return [
        ("Anthropic message", _call(provider="anthropic"), _chat(message)),
        ("Anthropic message as a dict", _call(provider="anthropic"), _chat(dict(message))),
        ("Anthropic message, provider said openai", _call(), _chat(message)),
        ("raw as a dict", _call(), _chat(_body(USUAL[1]))),
        ("no raw, copied counts", _call(), _chat(None, additional_kwargs=dict(_TOKENS))),
        ("no raw, nothing", _call(), _chat(None)),
        ("no usage", _call(), _chat(ChatCompletion.model_validate(_body(None)))),
        ("no response", _call(), None),
        ("legacy completion (no service_tier field)", _call("completion"), _chat(legacy)),
        ("an OpenAI-compatible provider", _call(provider="deepseek"), _chat(usual)),
        ("no provider", _call(provider=None), _chat(usual)),
        ("an object, not a model", _call(), _chat(SimpleNamespace(**_body(None)))),
        ("empty model", _call(), _chat(ChatCompletion.construct(**_body(_TOKENS, model="")))),
        ("model not a string", _call(), _chat(ChatCompletion.construct(**_body(_TOKENS, model=3)))),
        (
            "tier not a string",
            _call(),
            _chat(ChatCompletion.construct(**_body(_TOKENS, service_tier=1))),
        ),
        ("embedding", _call("embedding"), _chat(usual)),
        ("usage as a dict", _call(), _chat(_with_usage(dict(_TOKENS)))),
        ("usage of another type", _call(), _chat(_with_usage(SimpleNamespace(**_TOKENS)))),
    ]


@pytest.mark.parametrize("case", range(len(_declined())))
def test_plain_record_declines_other_shapes(case: int) -> None:
    _name, call, response = _declined()[case]
    assert _same(call, response) is None


@pytest.mark.parametrize("rid", ["", None])
def test_plain_record_request_id_missing_or_empty(rid: Any) -> None:
    raw = ChatCompletion.construct(**_body(_TOKENS, id=rid))
    fast = _same(_call(), _chat(raw))
    assert fast is not None and fast.request_id is None


_count = st.one_of(
    st.integers(min_value=-3, max_value=2_000),
    st.just(None),
    st.booleans(),
    st.integers(min_value=2**53 - 2, max_value=2**53 + 2),
)


@settings(max_examples=300, deadline=None)
@given(
    inp=_count,
    out=_count,
    cached=_count,
    write=_count,
    audio_in=_count,
    reasoning=_count,
    audio_out=_count,
    tier=st.sampled_from([None, "default", "flex", "batch", "Priority"]),
    details=st.booleans(),
)
def test_plain_record_agrees_with_the_general_reader_on_any_counts(
    inp: Any,
    out: Any,
    cached: Any,
    write: Any,
    audio_in: Any,
    reasoning: Any,
    audio_out: Any,
    tier: Any,
    details: bool,
) -> None:
    shape: dict[str, Any] = {"prompt_tokens": 1, "completion_tokens": 1}
    if details:
        shape["prompt_tokens_details"] = {"cached_tokens": 0}
        shape["completion_tokens_details"] = {"reasoning_tokens": 0}
    raw = ChatCompletion.construct(**_body(shape, service_tier=tier))
    # The values written as given (construct() turns a bool into an int): a response
    # the SDK did not validate can carry anything.
    block = raw.usage
    assert block is not None
    block.__dict__.update(prompt_tokens=inp, completion_tokens=out)
    if details:
        assert block.prompt_tokens_details and block.completion_tokens_details
        block.prompt_tokens_details.__dict__.update(
            cached_tokens=cached, cache_write_tokens=write, audio_tokens=audio_in
        )
        block.completion_tokens_details.__dict__.update(
            reasoning_tokens=reasoning, audio_tokens=audio_out
        )
    _same(_call(), _chat(raw))


@settings(max_examples=200, deadline=None)
@given(inp=_count, out=_count, cached=_count, reasoning=_count)
def test_usage_of_an_sdk_response_is_what_the_general_reader_says(
    inp: Any, out: Any, cached: Any, reasoning: Any
) -> None:
    """``usage_of`` reads the SDK's ``CompletionUsage`` in one pass (``_sdk_counts``); on
    any counts (past ``MAX_TOKENS`` too, which the general reader clamps and flags) it
    gives the general reader's answer."""
    from tokentrail.integrations.llamaindex_usage import usage_of

    # All zero is "no usage reported" to the general reader, zero counts to the SDK path;
    # the record is the same either way (see the tests above).
    assume(
        any(type(v) is not int or v != 0 for v in (inp, out, cached, reasoning) if v is not None)
    )
    shape: dict[str, Any] = {
        "prompt_tokens": 1,
        "completion_tokens": 1,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    raw = ChatCompletion.construct(**_body(shape))
    block = raw.usage
    assert block is not None and block.prompt_tokens_details and block.completion_tokens_details
    block.__dict__.update(prompt_tokens=inp, completion_tokens=out)
    block.prompt_tokens_details.__dict__.update(cached_tokens=cached)
    block.completion_tokens_details.__dict__.update(reasoning_tokens=reasoning)
    # Without a provider of OpenAI's own semantics the general reader answers.
    general = usage_of(_chat(raw), None, "gpt-4o")
    assert usage_of(_chat(raw), "openai", "gpt-4o") == general


# ---------------------------------------------------------------------- identification
class _PlainLLM:
    api_base = "http://127.0.0.1:9/v1"


class _NoURL:
    pass


class _ExtraLLM(BaseModel):
    """A pydantic LLM whose URL field is unset and whose endpoint is an extra."""

    model_config = ConfigDict(extra="allow")
    api_base: str | None = None


def _llms() -> list[Any]:
    from llama_index.llms.openai import OpenAI

    # No URL in its fields (an empty api_base): the extras are looked at.
    with_extra = OpenAI(api_key="sk-test", api_base="")
    with_extra.__pydantic_extra__ = {"endpoint": "https://extra.example"}
    return [
        None,
        OpenAI(api_key="sk-test", api_base="http://127.0.0.1:9/v1"),
        OpenAI(api_key="sk-test", api_base="https://api.openai.com/v1"),
        OpenAI(api_key="sk-test", api_base=""),
        with_extra,
        _PlainLLM(),
        _NoURL(),
        SimpleNamespace(base_url="https://api.anthropic.com"),
        SimpleNamespace(endpoint=""),
        _ExtraLLM.model_validate({"endpoint": "https://api.deepseek.com/v1"}),
        _ExtraLLM(api_base="https://api.deepseek.com/v1"),
        _ExtraLLM(),
    ]


_MODEL_DICTS: list[dict[str, Any]] = [
    {},
    {"model": "gpt-4o-mini", "class_name": "openai_llm"},
    {"model_name": "claude-sonnet-4-5", "class_name": "Anthropic_LLM"},
    {"model_name": "", "model": "gpt-4o"},
    {"model_name": 3, "model": "unknown"},
    {"model_name": "unknown", "model": "gpt-4o"},
    {"model": "gemini-2.5-flash", "class_name": ["not", "a", "string"]},
    {"model": "llama3", "class_name": "Ollama"},
]


@pytest.mark.parametrize("model_dict", _MODEL_DICTS)
def test_identify_is_what_the_single_readers_say(model_dict: dict[str, Any]) -> None:
    for llm in _llms():
        model = lr._model_name(model_dict)
        expected = (model, lr._provider(model, lr._base_url(llm), model_dict.get("class_name")))
        assert lr._identify(llm, model_dict) == expected
        assert lr._identify(llm, model_dict) == expected  # memoized: the same again


def test_identify_reads_the_endpoint_per_call() -> None:
    from llama_index.llms.openai import OpenAI

    llm = OpenAI(api_key="sk-test", api_base="https://api.openai.com/v1")
    assert lr._identify(llm, {"model": "m-1"})[1] == "openai"
    llm.api_base = "https://api.deepseek.com/v1"
    assert lr._identify(llm, {"model": "m-1"}) == (
        "m-1",
        lr._provider("m-1", "https://api.deepseek.com/v1", None),
    )


def test_a_root_span_is_placed_as_the_walk_places_it(tracker: Any) -> None:
    hub = lr.Hub(lambda: None, lambda: None)
    rec = lr.Recorder(tracker, hub)
    llm = _ExtraLLM(api_base="https://api.deepseek.com/v1")
    model_dict = {"model": "m-1"}
    assert lr._identify(llm, model_dict) != lr._identify(None, model_dict)  # it matters
    hub.spans["root"] = (None, llm)
    call = rec.start_llm("root", "chat", model_dict, source="callback")
    assert call is not None
    placed = (call.parent, call.parent_run_id, call.trace_id, call.provider)
    ancestor, parent, root, instance = rec._place("root")
    assert placed == (ancestor, parent, root, lr._identify(instance, model_dict)[1])
    # A child span goes the general way: its parent and root from the walk.
    hub.spans["child"] = ("root", llm)
    child = rec.start_llm("child", "chat", model_dict, source="callback")
    assert child is not None
    assert (child.parent, child.parent_run_id, child.trace_id) == (call, "root", "root")


# ---------------------------------------------------------------------- event routing
class _Spy:
    """A recorder stand-in that notes how it was called."""

    def __init__(self) -> None:
        self.seen: list[tuple[Any, ...]] = []

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: self.seen.append((name, args, kwargs))


def _events() -> list[Any]:
    from llama_index.core.instrumentation.events.llm import (
        LLMChatEndEvent,
        LLMChatStartEvent,
        LLMCompletionEndEvent,
        LLMCompletionStartEvent,
    )

    messages = [ChatMessage(role="user", content="hi")]
    response = _chat(ChatCompletion.model_validate(_body(_TOKENS)))
    return [
        LLMChatStartEvent(
            messages=messages,
            additional_kwargs={"tools": ["t"]},
            model_dict={"model": "gpt-4o"},
            span_id="s-1",
            tags={"user_id": "u"},
        ),
        LLMChatEndEvent(messages=messages, response=response, span_id="s-1"),
        LLMCompletionStartEvent(
            prompt="hi", additional_kwargs={}, model_dict={"model": "gpt-4o"}, span_id="s-2"
        ),
        LLMCompletionEndEvent(prompt="hi", response=CompletionResponse(text="ok"), span_id="s-2"),
    ]


def test_handler_routes_the_chat_events_as_the_dispatch_table_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for event in _events():
        direct, table = _Spy(), _Spy()
        monkeypatch.setattr(lh.HUB, "recorders", (direct,))
        lh._EVENT_HANDLER.handle(event)
        lh._DISPATCH[type(event)](table, event)  # type: ignore[arg-type]
        assert direct.seen == table.seen and direct.seen


def test_handler_logs_a_recorder_error_and_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        def start_llm(self, *args: Any) -> None:
            raise RuntimeError("boom")

        def end(self, *args: Any) -> None:
            raise RuntimeError("boom")

    after = _Spy()
    monkeypatch.setattr(lh.HUB, "recorders", (Broken(), after))
    for event in _events()[:2]:
        lh._EVENT_HANDLER.handle(event)
    assert [name for name, _a, _k in after.seen] == ["start_llm", "end"]
    assert caplog.text.count("could not handle LlamaIndex") == 2


# ---------------------------------------------------------------------- end to end
def _raw(i: int) -> ChatCompletion:
    return ChatCompletion.model_validate(
        _body(
            {
                "prompt_tokens": 100 + i,
                "completion_tokens": 10 + i,
                "total_tokens": 110 + 2 * i,
                "prompt_tokens_details": {"cached_tokens": i},
                "completion_tokens_details": {"reasoning_tokens": i // 2},
            },
            id=f"chatcmpl-{i}",
            service_tier="flex" if i % 2 else "default",
        )
    )


class _ScriptedOpenAI(CustomLLM):
    """Answers at once with the raw response a real OpenAI call returns."""

    turn: int = 0

    @classmethod
    def class_name(cls) -> str:
        return "openai_llm"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="gpt-4o-mini", is_chat_model=True)

    def _next(self) -> ChatCompletion:
        self.turn += 1
        return _raw(self.turn)

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return _chat(self._next())

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        last = self._next()
        with_usage = bool(kwargs.get("usage"))

        def gen() -> ChatResponseGen:
            yield ChatResponse(message=ChatMessage(role="assistant", content="o"), delta="o")
            yield ChatResponse(
                message=ChatMessage(role="assistant", content="ok"),
                delta="k",
                raw=last if with_usage else None,
            )

        return gen()

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text="ok", raw=self._next())

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        raise NotImplementedError


def _one_of_each(tracker: Any) -> None:
    """One call of each kind, through ``tracker.llamaindex()``."""
    from llama_index.core.embeddings import MockEmbedding

    llm = _ScriptedOpenAI(callback_manager=CallbackManager([]))
    hi = [ChatMessage(role="user", content="hi")]
    with tracker.llamaindex(user_id="u1", operation="op"):
        llm.chat(hi)
        llm.complete("hi")
        llm.chat(hi)
        for _ in llm.stream_chat(hi, usage=True):
            pass
        for _ in llm.stream_chat(hi):
            pass
        MockEmbedding(embed_dim=4).get_text_embedding_batch(["one text", "two texts"])
        with instrument_tags({"user_id": "tagged", "tags": ["t1"], "tenant": "acme"}):
            llm.chat(hi)
        with tracker.track(operation="block"):
            llm.chat(hi)
        llm.chat(hi)  # the cached context again, after the block


def _session(tracker: Any) -> list[dict[str, Any]]:
    """One of each call, recorded; the records without their per-run ids."""
    records: list[Any] = []
    contexts: list[Any] = []

    def capture(record: Any, *, context: Any = None, reservation: Any = None) -> Any:
        records.append(record)
        # The runs are new objects in every session: their number is compared.
        contexts.append((context.attribution, len(context.runs), reservation))
        return record

    tracker.capture = capture
    # Every call as a record (the one-step store is compared row by row below).
    tracker.capture_plain = lambda *args: False
    _one_of_each(tracker)
    del tracker.capture, tracker.capture_plain
    # Every call here is at the root: its own span is the trace.
    assert all(r.trace_id == r.run_id and r.parent_run_id is None for r in records)
    volatile = _VOLATILE | {"ts", "run_id", "parent_run_id", "trace_id"}
    return [
        {"context": c, **{k: getattr(r, k) for k in type(r).__slots__ if k not in volatile}}
        for r, c in zip(records, contexts, strict=True)
    ]


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """Whether each end went through ``_plain_result`` and it read the call."""
    seen: list[bool] = []
    real = lr._plain_result

    def spy(call: lr.Call, response: Any) -> Any:
        found = real(call, response)
        seen.append(found is not None)
        return found

    monkeypatch.setattr(lr, "_plain_result", spy)
    yield seen


def test_a_session_records_the_same_rows_with_and_without_the_fast_path(
    tracker: Any, monkeypatch: pytest.MonkeyPatch, taken: list[bool]
) -> None:
    fast = _session(tracker)
    # chat, complete, chat, then the tagged, in-block and last chats; streams never get there.
    assert taken == [True] * 6
    monkeypatch.setattr(lr, "_plain_result", lambda call, response: None)
    general = _session(tracker)
    assert fast == general
    assert [r["operation"] for r in fast] == [None] * 5 + ["embedding", None, None, None]
    attributions = [r["context"][0] for r in fast]
    # The handle's arguments win over the track() block's (see the integration's docs).
    assert [a.operation for a in attributions] == ["op"] * 9
    assert [a.user_id for a in attributions] == ["u1"] * 6 + ["tagged", "u1", "u1"]
    assert attributions[6].metadata == {"tenant": "acme"} and "t1" in attributions[6].tags
    assert [r["context"][1] for r in fast] == [0] * 7 + [1, 0]
    assert [r["streamed"] for r in fast][:6] == [False, False, False, True, True, False]
    assert fast[0]["usage"].cache_read_tokens == 1 and fast[0]["price_variant"] == "flex"
    assert fast[1]["price_variant"] is None and fast[1]["request_id"] == "chatcmpl-2"
    assert fast[4]["usage"].estimated and fast[5]["usage"].estimated


def _stored_session(tracker: Any) -> list[dict[str, Any]]:
    """One call of each kind (``_one_of_each``), as stored in DuckDB."""
    from tests.conftest import read_rows

    _one_of_each(tracker)
    volatile = {"id", "ts", "latency_ms", "run_id", "parent_run_id", "trace_id"}
    return [{k: v for k, v in row.items() if k not in volatile} for row in read_rows(tracker)]


def test_the_usual_calls_stored_in_one_step_are_the_rows_capture_stores(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tokentrail import Tracker

    one_step, general = Tracker(tmp_path / "one.duckdb"), Tracker(tmp_path / "general.duckdb")
    try:
        taken = spy_capture_plain(one_step, monkeypatch)
        fast = _stored_session(one_step)
        monkeypatch.setattr(general, "capture_plain", lambda *args: False)
        slow = _stored_session(general)
    finally:
        one_step.close()
        general.close()
    # The completion, the tagged chat and the last chat take it. Odd turns answer on the
    # flex tier (a price variant) and streams and the embedding are not the usual call:
    # those are left to capture, as is the chat in the track() block (also flex).
    assert taken == [True, True, True]
    assert len(fast) == 9 and fast == slow
    assert sum("flex" in (row["metadata"] or "") for row in fast) == 3
    assert {row["user_id"] for row in fast} == {"u1", "tagged"}
    # Priced, but for the embedding of the mock model, which has no price.
    assert [row["total_cost"] is None for row in fast] == [False] * 5 + [True] + [False] * 3
