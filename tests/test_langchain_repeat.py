"""LangChain handler: calls that repeat what earlier calls said.

The handler reuses what repeats from call to call (the handler's own context, the model's
class and base URL, which metadata keys are the user's). These tests make one handler see
calls that differ from the ones before them in exactly one respect (counts included: a
reader that reused what earlier counts gave would be caught), and check that each row
still says what its own call said.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, cast

import pytest

from tokentrail.usage import Usage


class _Scripted:
    """An in-process chat model answering with the ``usage_metadata`` it is given next."""

    def __init__(self) -> None:
        from langchain_core.language_models import BaseChatModel
        from langchain_core.messages import AIMessage
        from langchain_core.outputs import ChatGeneration, ChatResult

        script: list[tuple[dict[str, Any], str | None]] = []
        self.script = script

        class Scripted(BaseChatModel):
            model_name: str = "gpt-4o-mini"

            @property
            def _llm_type(self) -> str:
                return "scripted"

            def _generate(
                self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any
            ) -> ChatResult:
                usage, returned = script.pop(0)
                meta = {} if returned is None else {"model_name": returned}
                message = AIMessage("ok", response_metadata=meta)
                # Set after validation: a provider integration can hand over any dict.
                message.usage_metadata = usage  # type: ignore[assignment]
                return ChatResult(generations=[ChatGeneration(message=message)])

        self.model = Scripted()

    def invoke(self, usage: dict[str, Any], returned: str | None = None, **config: Any) -> None:
        self.script.append((usage, returned))
        self.model.invoke("hi", config=cast(Any, config))


@pytest.fixture
def scripted() -> Iterator[_Scripted]:
    yield _Scripted()


def _usage(inp: Any, out: Any, **details: Any) -> dict[str, Any]:
    um: dict[str, Any] = {"input_tokens": inp, "output_tokens": out, "total_tokens": 0}
    if details:
        um["input_token_details"] = details
    return um


def test_handler_context_follows_track_blocks_and_per_call_attribution(
    tracker: Any, captured: list[Any], scripted: _Scripted
) -> None:
    handler = tracker.langchain(user_id="handler", operation="chat")
    scripted.invoke(_usage(10, 1), callbacks=[handler])
    with tracker.track(user_id="block", session_id="s1") as run:
        scripted.invoke(_usage(10, 1), callbacks=[handler])
    scripted.invoke(_usage(10, 1), callbacks=[handler], metadata={"user_id": "meta"}, tags=["t"])
    scripted.invoke(_usage(10, 1), callbacks=[handler])
    people = [(r.user_id, r.session_id, r.operation, r.tags) for r in captured]
    assert people == [
        ("handler", None, "chat", ()),
        ("handler", "s1", "chat", ()),  # the handler's argument beats the block's
        ("meta", None, "chat", ("t",)),
        ("handler", None, "chat", ()),
    ]
    assert run.summary().calls == 1


def test_counts_that_equal_earlier_ints_are_still_validated(
    tracker: Any, captured: list[Any], scripted: _Scripted
) -> None:
    from tokentrail.extract import from_langchain_usage_metadata

    odd = [
        _usage(True, 1),  # a bool is not a count, even where 1 was one before
        _usage(10.0, 1),
        _usage(10, -1),
        _usage(10, 1, cache_read=11),  # a subset larger than its parent
    ]
    for um in [_usage(1, 1), _usage(10, 1), _usage(10, 1, cache_read=10), *odd]:
        scripted.invoke(dict(um), callbacks=[tracker.langchain()])
    plain = [r.usage for r in captured[:3]]
    assert plain == [
        Usage(input_tokens=1, output_tokens=1),
        Usage(input_tokens=10, output_tokens=1),
        Usage(input_tokens=10, output_tokens=1, cache_read_tokens=10),
    ]
    for rec, um in zip(captured[3:], odd, strict=True):
        assert rec.usage == from_langchain_usage_metadata(um)
    assert all(r.usage.issues for r in captured[3:] if r.usage.input_tokens != 10.0)


def test_repeated_counts_priced_per_returned_model(
    tracker: Any, captured: list[Any], scripted: _Scripted
) -> None:
    for returned in ("gpt-4o-mini", "gpt-4o", "gpt-4o-mini", None):
        scripted.invoke(_usage(1000, 100), returned, callbacks=[tracker.langchain()])
    assert len({r.id for r in captured}) == 4
    assert [r.model for r in captured] == ["gpt-4o-mini", "gpt-4o", "gpt-4o-mini", "gpt-4o-mini"]
    # gpt-4o-mini: 1000 x $0.15 + 100 x $0.60 per 1M; gpt-4o: 1000 x $2.50 + 100 x $10
    mini, full = Decimal("0.00021"), Decimal("0.0035")
    assert [r.total_cost for r in captured] == [mini, full, mini, mini]


def test_metadata_values_are_each_calls_own(
    tracker: Any, captured: list[Any], scripted: _Scripted
) -> None:
    handler = tracker.langchain()
    for tenant in ("a", "b"):
        meta = {"tenant": tenant, "ls_extra": 1, "shape": [1, 2]}
        scripted.invoke(_usage(1, 1), callbacks=[handler], metadata=meta)
    scripted.invoke(_usage(1, 1), callbacks=[handler], metadata={"shape": "flat"})
    assert [r.metadata for r in captured] == [{"tenant": "a"}, {"tenant": "b"}, {"shape": "flat"}]


def test_two_models_alternating_keep_their_providers(tracker: Any, captured: list[Any]) -> None:
    from langchain_anthropic import ChatAnthropic
    from langchain_core.messages import AIMessage, HumanMessage
    from langchain_core.outputs import ChatGeneration, LLMResult
    from langchain_openai import ChatOpenAI
    from pydantic import SecretStr

    groq = ChatOpenAI(
        model="llama-3.3-70b-versatile",
        base_url="https://api.groq.com/openai/v1",
        api_key=SecretStr("x"),
    )
    claude = ChatAnthropic(model_name="claude-haiku-4-5", api_key=SecretStr("x"))  # type: ignore[call-arg]
    handler = tracker.langchain()
    for llm in (groq, claude, groq, claude):
        run_id = uuid.uuid4()
        handler.on_chat_model_start(
            llm._serialized,
            [[HumanMessage("hi")]],
            run_id=run_id,
            invocation_params=llm._get_invocation_params(),
            metadata=llm._get_ls_params(),
        )
        usage = {"input_tokens": 10, "output_tokens": 2, "total_tokens": 12}
        message = AIMessage("ok", usage_metadata=usage)
        result = LLMResult(generations=[[ChatGeneration(message=message)]])
        handler.on_llm_end(result, run_id=run_id)
    assert [(r.provider, r.model) for r in captured] == [
        ("groq", "llama-3.3-70b-versatile"),
        ("anthropic", "claude-haiku-4-5"),
    ] * 2


def test_replaced_handler_attribution_applies_to_the_next_call(
    tracker: Any, captured: list[Any], scripted: _Scripted
) -> None:
    from tokentrail.context import Attribution

    handler = tracker.langchain(user_id="first")
    scripted.invoke(_usage(1, 1), callbacks=[handler])
    handler.attribution = Attribution(user_id="second")
    scripted.invoke(_usage(1, 1), callbacks=[handler])
    assert [r.user_id for r in captured] == ["first", "second"]
