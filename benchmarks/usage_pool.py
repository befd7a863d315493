"""Token counts that differ from call to call, as real traffic does.

A benchmark that repeats one usage lets any cache keyed on the counts answer every call,
which real traffic (prompts and answers of varying length) almost never allows. Each
benchmark's in-process model cycles through this deterministic pool instead.
"""

from __future__ import annotations

import random
from typing import Any

#: Distinct calls in the pool (a prime, so cycles do not line up with round sizes).
POOL_SIZE = 997


def _counts() -> list[tuple[int, int, int, int]]:
    """(input, cache read, output, reasoning) per call: half the prompts partly cached."""
    rng = random.Random(20261123)
    calls = []
    for _ in range(POOL_SIZE):
        inp = rng.randint(200, 6000)
        cached = (rng.randint(0, inp * 8 // 10) // 128) * 128 if rng.random() < 0.5 else 0
        out = rng.randint(20, 900)
        reasoning = rng.randint(0, out // 2) if rng.random() < 0.2 else 0
        calls.append((inp, cached, out, reasoning))
    return calls


COUNTS = _counts()


def tokentrail_usages() -> list[dict[str, int]]:
    """The pool as ``Tracker.record(usage=...)`` mappings."""
    return [
        {
            "input_tokens": inp,
            "cache_read_tokens": cached,
            "output_tokens": out,
            "reasoning_tokens": reasoning,
        }
        for inp, cached, out, reasoning in COUNTS
    ]


def langchain_usage_metadata() -> list[dict[str, Any]]:
    """The pool as LangChain ``AIMessage.usage_metadata`` dicts."""
    return [
        {
            "input_tokens": inp,
            "output_tokens": out,
            "total_tokens": inp + out,
            "input_token_details": {"cache_read": cached},
            "output_token_details": {"reasoning": reasoning},
        }
        for inp, cached, out, reasoning in COUNTS
    ]


def openai_usages() -> list[dict[str, Any]]:
    """The pool as OpenAI Chat Completions ``usage`` objects (JSON)."""
    return [
        {
            "prompt_tokens": inp,
            "completion_tokens": out,
            "total_tokens": inp + out,
            "prompt_tokens_details": {"cached_tokens": cached},
            "completion_tokens_details": {"reasoning_tokens": reasoning},
        }
        for inp, cached, out, reasoning in COUNTS
    ]
