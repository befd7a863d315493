"""Per-call overhead of tokentrail's LlamaIndex instrumentation vs LlamaIndex's own counter.

Same in-process LLM (no network: a ``CustomLLM`` whose ``chat`` returns a ``ChatResponse``
carrying a real ``openai`` ``ChatCompletion`` with usage, cached and reasoning tokens), same
run, interleaved rounds:

* base: ``llm.chat`` with no tokentrail handlers and an empty callback manager;
* baseline: with LlamaIndex's ``TokenCountingHandler`` in the LLM's callback manager
  (it reads the counts from the raw response, so it does not re-tokenize here);
* ours: with ``tracker.llamaindex()`` attached — event and span handlers, usage from the
  raw response, attribution, pricing, the durable spool and the DuckDB write (each round
  ends with ``tracker.flush()``, counted in). A round is 2,000 calls, one DuckDB batch, as
  the background writer stores about one batch per second (see ``bench_langchain``).

overhead = fastest round with the handler − fastest round without; the goal (issue 19) is
ours ≤ 2× the baseline's: one readable path per rule is worth a few microseconds.
A second row isolates the instrumentation itself (events, spans, usage reading, record
building) by replacing ``tracker.capture`` with a no-op for some rounds, so the share of
pricing and persisting is visible.
A breakdown row (measured after the others, in its own short rounds) gives the share of
the span handler alone: tokentrail's span handler on the dispatcher, no event handler.
"""

from __future__ import annotations

import gc
import itertools
import tempfile
import time
from pathlib import Path
from typing import Any

from .rows import context_row, overhead_row

GOAL_RATIO = 2.0

_RAW = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": 1_763_856_000,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "ok"},
            "finish_reason": "stop",
            "logprobs": None,
        }
    ],
    "usage": {
        "prompt_tokens": 1200,
        "completion_tokens": 80,
        "total_tokens": 1280,
        "prompt_tokens_details": {"cached_tokens": 1000},
        "completion_tokens_details": {"reasoning_tokens": 16},
    },
}


def _llm() -> Any:
    from llama_index.core.base.llms.types import (
        ChatMessage,
        ChatResponse,
        CompletionResponse,
        LLMMetadata,
    )
    from llama_index.core.callbacks import CallbackManager
    from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
    from llama_index.core.llms.custom import CustomLLM
    from openai.types.chat import ChatCompletion

    from .usage_pool import openai_usages

    # Counts differ from call to call as in real traffic (see ``usage_pool``); the
    # responses are built up front so that building them is not part of any variant.
    pool = [
        (
            ChatCompletion.model_validate({**_RAW, "usage": usage}),
            {
                "prompt_tokens": usage["prompt_tokens"],
                "completion_tokens": usage["completion_tokens"],
                "total_tokens": usage["total_tokens"],
            },
        )
        for usage in openai_usages()
    ]
    turn = itertools.count()

    class UsageLLM(CustomLLM):
        """Answers at once, with the raw response a real OpenAI call returns."""

        @classmethod
        def class_name(cls) -> str:
            return "openai_llm"

        @property
        def metadata(self) -> LLMMetadata:
            return LLMMetadata(model_name="gpt-4o-mini", is_chat_model=True)

        @llm_chat_callback()
        def chat(self, messages: Any, **kwargs: Any) -> ChatResponse:
            raw, counts = pool[next(turn) % len(pool)]
            return ChatResponse(
                message=ChatMessage(role="assistant", content="ok"),
                raw=raw,
                additional_kwargs=dict(counts),
            )

        @llm_completion_callback()
        def complete(self, prompt: str, formatted: bool = False, **kw: Any) -> CompletionResponse:
            return CompletionResponse(text="ok", raw=pool[next(turn) % len(pool)][0])

        @llm_completion_callback()
        def stream_complete(self, prompt: str, formatted: bool = False, **kw: Any) -> Any:
            raise NotImplementedError

    return UsageLLM(callback_manager=CallbackManager([]))


def _time(llm: Any, n: int, after: Any = None) -> float:
    from llama_index.core.base.llms.types import ChatMessage

    messages = [ChatMessage(role="user", content="hello")]
    gc.collect()
    t0 = time.perf_counter()
    for _ in range(n):
        llm.chat(messages)
    if after is not None:
        after()
    return (time.perf_counter() - t0) / n


def _stored(tracker: Any) -> int:
    from tokentrail.store import reading

    tracker.flush()
    with reading(tracker.path) as con:
        row = con.execute("SELECT count(*) FROM usage WHERE total_cost > 0").fetchone()
        return int(row[0]) if row else 0


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Measure the instrumentation; returns the benchmark rows (see ``benchmarks/__init__``)."""
    from llama_index.core.callbacks import CallbackManager, TokenCountingHandler

    from tokentrail import Tracker

    n = 100 if quick else 2000
    rounds = 3 if quick else 9
    short_n, short_rounds = (50, 9) if quick else (50, 41)
    plain = _llm()
    counted = _llm()
    counter = TokenCountingHandler()
    counted.callback_manager = CallbackManager([counter])
    with tempfile.TemporaryDirectory() as tmp:
        tracker = Tracker(Path(tmp) / "bench.duckdb")
        try:

            def ours(count: int) -> float:
                handle = tracker.llamaindex(user_id="bench", operation="bench")
                try:
                    return _time(plain, count, after=tracker.flush)
                finally:
                    handle.detach()

            def ours_without_capture(count: int) -> float:
                tracker.capture = lambda record, **kw: record  # type: ignore[method-assign]
                handle = tracker.llamaindex(user_id="bench", operation="bench")
                try:
                    return _time(plain, count)
                finally:
                    handle.detach()
                    del tracker.capture

            # Warm up every path (imports, pricing index, DuckDB file and schema).
            _time(plain, 50)
            _time(counted, 50)
            ours(50)
            # End to end (capture, pricing, store, DuckDB flush): rounds of n calls.
            base: list[float] = []
            theirs: list[float] = []
            mine: list[float] = []
            for _ in range(rounds):
                base.append(_time(plain, n))
                theirs.append(_time(counted, n))
                mine.append(ours(n))
            # The instrumentation alone: many short rounds, so that the fastest ones are
            # free of the neighbours' load on a shared machine.
            short_base: list[float] = []
            short_theirs: list[float] = []
            bare: list[float] = []
            for _ in range(short_rounds):
                short_base.append(_time(plain, short_n))
                short_theirs.append(_time(counted, short_n))
                bare.append(ours_without_capture(short_n))
            # Breakdown: the span handler's share (the span tree kept for every span).
            from llama_index_instrumentation import get_dispatcher

            from tokentrail.integrations.llamaindex_handlers import _SPAN_HANDLER

            root = get_dispatcher()

            def spans_only(count: int) -> float:
                root.span_handlers = [*root.span_handlers, _SPAN_HANDLER]
                try:
                    return _time(plain, count)
                finally:
                    root.span_handlers = [h for h in root.span_handlers if h is not _SPAN_HANDLER]

            span_base: list[float] = []
            span_only: list[float] = []
            for _ in range(short_rounds):
                span_base.append(_time(plain, short_n))
                span_only.append(spans_only(short_n))
            stored = _stored(tracker)
        finally:
            tracker.close()
    if stored != 50 + rounds * n:  # every call must really have been priced and stored
        raise RuntimeError(f"expected {50 + rounds * n} stored rows, found {stored}")
    if len(counter.llm_token_counts) != 50 + rounds * n + short_rounds * short_n:
        raise RuntimeError("TokenCountingHandler did not count every call")
    # The fastest round of each kind: on a shared machine, slower rounds measure the
    # neighbours (timeit's advice); every kind gets the same number of rounds.
    t_base = min(base)
    over_theirs = max(min(theirs) - t_base, 1e-9)
    over_mine = max(min(mine) - t_base, 0.0)
    short_over_theirs = max(min(short_theirs) - min(short_base), 1e-9)
    over_bare = max(min(bare) - min(short_base), 0.0)
    over_spans = max(min(span_only) - min(span_base), 0.0)
    theirs_name = "TokenCountingHandler overhead per call"
    return [
        overhead_row(
            "llamaindex instrumentation overhead per call (pricing + spool + DuckDB write, one batch per 2,000 calls)",
            over_mine,
            over_theirs,
            theirs_name,
            GOAL_RATIO,
        ),
        overhead_row(
            "llamaindex instrumentation alone per call (capture stubbed: no pricing/store)",
            over_bare,
            short_over_theirs,
            theirs_name,
            GOAL_RATIO,
        ),
        context_row(
            "breakdown: llamaindex span handler alone per call (no event handler)", over_spans
        ),
        context_row("llamaindex chat without any handler (in-process LLM)", t_base),
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
