"""Cohere v2 chat and embed responses, priced from their billed units.

Payload shapes follow Cohere's API reference (docs.cohere.com/reference/chat: ``usage``
with ``billed_units`` and ``tokens``; docs.cohere.com/reference/embed: ``meta.billed_units``;
chat streaming: the ``message-end`` event's ``delta.usage``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from tokentrail import Usage
from tokentrail.extract import detect_dialect, extract_usage, from_cohere
from tokentrail.pricing.catalog import Catalog, catalog_dir
from tokentrail.pricing.engine import Pricer

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)

CHAT_V2 = {
    "id": "c14c80c3-18eb-4519-9460-6c92edd8cfb4",
    "finish_reason": "COMPLETE",
    "message": {"role": "assistant", "content": [{"type": "text", "text": "..."}]},
    "usage": {
        "billed_units": {"input_tokens": 5, "output_tokens": 418},
        "tokens": {"input_tokens": 71, "output_tokens": 420},
    },
}

EMBED_V2 = {
    "id": "da6e531f-4e4f-4b1f-9e2f-5bd8e1a6d2c1",
    "embeddings": {"float": [[0.016296387, -0.008354187]]},
    "texts": ["hello"],
    "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": 2_000}},
    "response_type": "embeddings_by_type",
}


@pytest.fixture(scope="module")
def pricer(tmp_path_factory: pytest.TempPathFactory) -> Pricer:
    cache: Path = tmp_path_factory.mktemp("catalog-cache")
    return Pricer(Catalog(catalog_dir(), cache_dir=cache), env=False)


def test_chat_v2_reads_billed_units_not_tokens() -> None:
    """``tokens`` (71 in) include Cohere's prompt template; 5 input tokens are billed."""
    assert detect_dialect(CHAT_V2) == "cohere"
    assert extract_usage(CHAT_V2) == Usage(input_tokens=5, output_tokens=418)
    assert extract_usage(CHAT_V2["usage"]) == Usage(input_tokens=5, output_tokens=418)


def test_chat_v2_priced(pricer: Pricer) -> None:
    """command-a at $2.50 in / $10 out per 1M (cohere.com/pricing):
    5 * 2.5 + 418 * 10 = 12.5 + 4,180 = 4,192.5 per 1M = $0.0041925."""
    cost = pricer.cost("command-a", usage=extract_usage(CHAT_V2), at=NOW, strict=True)
    assert cost is not None
    assert cost.total == Decimal("0.0041925")


def test_embed_v2_meta_billed_units_priced(pricer: Pricer) -> None:
    """embed-v4.0 text at $0.12 per 1M (cohere.com/pricing): 2,000 * 0.12 / 1M = $0.00024."""
    usage = extract_usage(EMBED_V2)
    assert usage == Usage(input_tokens=2_000)
    cost = pricer.cost("embed-v4.0", usage=usage, at=NOW, strict=True)
    assert cost is not None
    assert cost.total == Decimal("0.00024")


def test_stream_message_end_and_tokens_only() -> None:
    """A v2 stream's ``message-end`` carries the usage; ``tokens`` stand in when no
    ``billed_units`` are given."""
    event = {
        "type": "message-end",
        "delta": {
            "finish_reason": "COMPLETE",
            "usage": {"billed_units": {"input_tokens": 3, "output_tokens": 7}},
        },
    }
    assert extract_usage(event) == Usage(input_tokens=3, output_tokens=7)
    tokens_only = {"usage": {"tokens": {"input_tokens": 40, "output_tokens": 2}}}
    assert extract_usage(tokens_only) == Usage(input_tokens=40, output_tokens=2)


def test_rerank_search_units_only_is_no_usage() -> None:
    """A rerank response bills search units only: no token usage, nothing made up."""
    rerank = {"results": [], "meta": {"billed_units": {"search_units": 1}}}
    assert extract_usage(rerank) is None


def test_bad_counts_are_fixed_with_issues() -> None:
    usage = from_cohere({"usage": {"billed_units": {"input_tokens": "12", "output_tokens": -1}}})
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens) == (12, 0)
    assert usage.issues
    assert from_cohere("not a payload") is None
