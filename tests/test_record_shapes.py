"""``tracker.record(model=..., usage=...)`` reads a provider's own usage shapes.

Prices (USD per 1M tokens) from the vendors' pricing pages:
gpt-4o-mini (https://openai.com/api/pricing): input 0.15, cached input 0.075, output 0.60.
claude-sonnet-4-5 (https://docs.anthropic.com/en/docs/about-claude/pricing): input 3,
cache read 0.30, 5-minute cache write 3.75, output 15.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import pytest
from anthropic.types import Usage as AnthropicUsage
from openai.types import CompletionUsage
from openai.types.responses import ResponseUsage

# 1,000 prompt tokens of which 400 cached, 200 output, gpt-4o-mini:
# 600 x 0.15 + 400 x 0.075 + 200 x 0.60 = 90 + 30 + 120 = 240 per 1M -> $0.00024.
_MINI_COST = Decimal("0.00024")


def _completion_usage() -> CompletionUsage:
    return CompletionUsage(
        prompt_tokens=1000,
        completion_tokens=200,
        total_tokens=1200,
        prompt_tokens_details={"cached_tokens": 400},
        completion_tokens_details={"reasoning_tokens": 0},
    )


def _response_usage() -> ResponseUsage:
    return ResponseUsage(
        input_tokens=1000,
        output_tokens=200,
        total_tokens=1200,
        input_tokens_details={"cached_tokens": 400, "cache_write_tokens": 0},
        output_tokens_details={"reasoning_tokens": 0},
    )


@pytest.mark.parametrize(
    "usage",
    [
        _completion_usage(),
        _completion_usage().model_dump(),
        _response_usage(),
        _response_usage().model_dump(),
        {
            "input_tokens": 1000,
            "output_tokens": 200,
            "total_tokens": 1200,
            "input_token_details": {"cache_read": 400},
            "output_token_details": {"reasoning": 0},
        },
    ],
    ids=["chat-sdk", "chat-dump", "responses-sdk", "responses-dump", "langchain-metadata"],
)
def test_openai_and_langchain_shapes_keep_the_cached_part(
    tracker: Any, captured: list[Any], usage: Any
) -> None:
    rec = tracker.record(model="gpt-4o-mini", usage=usage)
    assert captured == [rec]
    assert (rec.usage.input_tokens, rec.usage.cache_read_tokens) == (1000, 400)
    assert rec.usage.output_tokens == 200
    assert rec.cost.total == _MINI_COST


@pytest.mark.parametrize("dump", [False, True])
def test_anthropic_usage_adds_cache_reads_and_writes_to_the_input(
    tracker: Any, captured: list[Any], dump: bool
) -> None:
    sdk = AnthropicUsage(
        input_tokens=100,
        cache_read_input_tokens=1000,
        cache_creation_input_tokens=200,
        output_tokens=50,
    )
    rec = tracker.record(model="claude-sonnet-4-5", usage=sdk.model_dump() if dump else sdk)
    assert rec.usage.input_tokens == 1300
    assert (rec.usage.cache_read_tokens, rec.usage.cache_write_tokens) == (1000, 200)
    # 100 x 3 + 1000 x 0.30 + 200 x 3.75 + 50 x 15 = 300 + 300 + 750 + 750 = 2100 per 1M.
    assert rec.cost.total == Decimal("0.0021")


def test_own_field_names_still_mean_all_prompt_tokens(tracker: Any) -> None:
    rec = tracker.record(
        model="gpt-4o-mini",
        usage={"input_tokens": 1000, "cache_read_tokens": 400, "output_tokens": 200},
    )
    assert rec.cost.total == _MINI_COST


def test_unreadable_usage_warns_once_and_stores_no_zero_cost(
    tracker: Any, captured: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="tokentrail"):
        rec = tracker.record(model="gpt-4o-mini", usage=object())
    assert captured == [rec]  # one row per call, its cost unknown (NULL), never $0
    assert rec.cost is None
    assert tracker.flush(30)
    assert tracker.analytics.summary().iloc[0]["unpriced_calls"] == 1
    warnings = [r for r in caplog.records if "cannot read token counts" in r.getMessage()]
    assert len(warnings) == 1
