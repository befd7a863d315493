"""The counted workloads the concurrency tests and the soak run drive.

In-process models (a LangChain chat model and a LlamaIndex ``CustomLLM``) whose token counts
differ on every call, the thread/task driver, and the exact expected cost to compare the
database's ``sum(total_cost)`` against.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from llama_index.core.llms import (
    CompletionResponse,
    CompletionResponseGen,
    CustomLLM,
    LLMMetadata,
)
from llama_index.core.llms.callbacks import llm_completion_callback

from tokentrail import Tracker
from tokentrail.estimate import count_message_tokens, count_text_tokens
from tokentrail.pricing import cost as price
from tokentrail.store import reading

MODEL = "gpt-4o-mini"
MAX_TOKENS = 40
# The vendor's prices for gpt-4o-mini, per token: a cross-check of the catalog below.
_IN, _OUT = Decimal("0.15") / 10**6, Decimal("0.60") / 10**6


def usage_of(i: int) -> tuple[int, int]:
    """Call ``i``'s (input, output) tokens: varied, so a lost or doubled row shows in sums."""
    return 10 + i % 97, 1 + i % 13


@cache
def cost_of(input_tokens: int, output_tokens: int) -> Decimal:
    """What one call costs by the price catalog (checked against the vendor's price)."""
    c = price(MODEL, provider="openai", input_tokens=input_tokens, output_tokens=output_tokens)
    assert c is not None
    assert c.total == input_tokens * _IN + output_tokens * _OUT
    return c.total


def index_of(text: str) -> int:
    return int(text.rsplit(" ", 1)[-1])


# ---------------------------------------------------------------------- in-process models
class CountingChat(BaseChatModel):
    """Answers ``call <i>`` locally with the usage of call ``i`` (or its worst case)."""

    model_name: str = MODEL
    max_tokens: int = MAX_TOKENS
    #: Report what a provider would bill for the worst case: the counted prompt and a
    #: reply of max_tokens (the budget test needs the provider to stay within its bound).
    worst_case: bool = False

    @property
    def _llm_type(self) -> str:
        return "counting-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "max_tokens": self.max_tokens}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "openai"
        params["ls_model_name"] = self.model_name
        return params

    def _usage(self, messages: list[BaseMessage]) -> tuple[int, int]:
        if self.worst_case:
            payload = [{"role": "user", "content": str(m.content)} for m in messages]
            return count_message_tokens(payload, model=self.model_name), self.max_tokens
        return usage_of(index_of(str(messages[-1].content)))

    def _result(self, messages: list[BaseMessage]) -> ChatResult:
        inp, out = self._usage(messages)
        message = AIMessage(
            content="ok",
            usage_metadata={"input_tokens": inp, "output_tokens": out, "total_tokens": inp + out},
            response_metadata={"model_name": self.model_name, "finish_reason": "stop"},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._result(messages)

    async def _agenerate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        await asyncio.sleep(0)  # let the other tasks' calls interleave with this one
        return self._result(messages)


class CountingLLM(CustomLLM):
    """A LlamaIndex LLM answering ``call <i>`` with an OpenAI-shaped raw payload."""

    model: str = MODEL
    max_tokens: int = MAX_TOKENS
    worst_case: bool = False

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=self.model, num_output=self.max_tokens)

    def _response(self, prompt: str) -> CompletionResponse:
        if self.worst_case:
            inp, out = count_text_tokens(prompt, model=self.model), self.max_tokens
        else:
            inp, out = usage_of(index_of(prompt))
        raw = {
            "object": "chat.completion",
            "model": self.model,
            "usage": {"prompt_tokens": inp, "completion_tokens": out, "total_tokens": inp + out},
        }
        return CompletionResponse(text="ok", raw=raw)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return self._response(prompt)

    @llm_completion_callback()
    async def acomplete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponse:
        await asyncio.sleep(0)
        return self._response(prompt)

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        response = self._response(prompt)

        def gen() -> CompletionResponseGen:
            yield response

        return gen()


# ---------------------------------------------------------------------- load drivers
@dataclass
class Load:
    """How many calls: ``threads`` x ``per_thread`` synchronous, then ``tasks`` async."""

    threads: int
    per_thread: int
    tasks: int
    per_task: int = 1

    @property
    def total(self) -> int:
        return self.threads * self.per_thread + self.tasks * self.per_task


def drive(load: Load, call: Callable[[int], Any], acall: Callable[[int], Any]) -> list[Any]:
    """Run ``call(i)`` on ``load.threads`` threads, then ``acall(i)`` as asyncio tasks.

    Returns the exceptions raised (in order of the call index).
    """
    errors: list[Any] = []
    lock = threading.Lock()
    start = threading.Barrier(load.threads)

    def worker(t: int) -> None:
        start.wait()  # every thread starts at once
        for k in range(load.per_thread):
            i = t * load.per_thread + k
            try:
                call(i)
            except Exception as exc:
                with lock:
                    errors.append(exc)

    with ThreadPoolExecutor(load.threads) as pool:
        list(pool.map(worker, range(load.threads)))

    base = load.threads * load.per_thread

    async def task(j: int) -> None:
        for k in range(load.per_task):
            try:
                await acall(base + j * load.per_task + k)
            except Exception as exc:
                errors.append(exc)

    async def main() -> None:
        await asyncio.gather(*(task(j) for j in range(load.tasks)))

    asyncio.run(main())
    return errors


def expected_cost(n: int) -> Decimal:
    return sum((cost_of(*usage_of(i)) for i in range(n)), Decimal(0))


def totals(db: Path) -> tuple[int, int, Decimal, int]:
    """Rows, distinct ids, exact cost sum, rows without a cost."""
    with reading(db) as con:
        rows, ids, total, unpriced = con.execute(
            "SELECT count(*), count(DISTINCT id), coalesce(sum(total_cost), 0),"
            " count(*) FILTER (WHERE total_cost IS NULL) FROM usage"
        ).fetchone()
    return int(rows), int(ids), Decimal(total), int(unpriced)


def langchain_load(db: Path, load: Load) -> dict[str, Any]:
    """Every call of ``load`` through one LangChain handler on :class:`CountingChat`."""
    model = CountingChat()
    with Tracker(db) as tracker:
        config = {"callbacks": [tracker.langchain(operation="load")]}
        errors = drive(
            load,
            lambda i: model.invoke([HumanMessage(f"call {i}")], config=config),
            lambda i: model.ainvoke([HumanMessage(f"call {i}")], config=config),
        )
        assert tracker.flush(60)
    return {"errors": errors}


def llamaindex_load(db: Path, load: Load) -> dict[str, Any]:
    """Every call of ``load`` through LlamaIndex instrumentation on :class:`CountingLLM`."""
    llm = CountingLLM()
    with Tracker(db) as tracker:
        handle = tracker.llamaindex(operation="load")
        try:
            errors = drive(
                load, lambda i: llm.complete(f"call {i}"), lambda i: llm.acomplete(f"call {i}")
            )
        finally:
            handle.detach()
        assert tracker.flush(60)
    return {"errors": errors}


def assert_exact(db: Path, n: int) -> None:
    rows, ids, total, unpriced = totals(db)
    assert (rows, ids, unpriced) == (n, n, 0)
    assert total == expected_cost(n)
    with reading(db) as con:
        per_shape = con.execute(
            "SELECT count(DISTINCT (input_tokens, output_tokens)), min(input_tokens),"
            " max(input_tokens) FROM usage"
        ).fetchone()
    assert per_shape == (min(n, 97 * 13), 10, 10 + min(n, 97) - 1)
