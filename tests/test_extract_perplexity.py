"""Perplexity sonar-deep-research: reasoning and citation tokens billed outside the total.

The payload is the example response in Perplexity's pricing guide
(docs.perplexity.ai/guides/pricing, "Detailed pricing breakdown for Sonar Deep Research"),
with Perplexity's own cost breakdown: input $0.000066, citations $0.038056, output
$0.09116, reasoning $0.581841, 21 searches $0.105, total $0.816123. Prices: input and
citation tokens $2/1M, output $8/1M, reasoning $3/1M, searches $5/1K.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from tokentrail import Usage
from tokentrail.extract import extract_usage, from_openai_compatible, reported_cost
from tokentrail.pricing.catalog import Catalog, catalog_dir
from tokentrail.pricing.engine import Pricer

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)

DEEP_RESEARCH = {
    "id": "11d634c8-cf22-4154-9f09-d8f501ae29b5",
    "model": "sonar-deep-research",
    "created": 1756488074,
    "usage": {
        "prompt_tokens": 33,
        "completion_tokens": 11395,
        "total_tokens": 11428,
        "citation_tokens": 19028,
        "num_search_queries": 21,
        "reasoning_tokens": 193947,
        "cost": {
            "input_tokens_cost": 0.000066,
            "output_tokens_cost": 0.09116,
            "reasoning_tokens_cost": 0.581841,
            "citation_tokens_cost": 0.038056,
            "search_queries_cost": 0.105,
            "total_cost": 0.816123,
        },
    },
}


@pytest.fixture(scope="module")
def pricer(tmp_path_factory: pytest.TempPathFactory) -> Pricer:
    cache: Path = tmp_path_factory.mktemp("catalog-cache")
    return Pricer(Catalog(catalog_dir(), cache_dir=cache), env=False)


def test_reasoning_and_citations_are_counted_not_clamped() -> None:
    usage = extract_usage(DEEP_RESEARCH)
    assert usage == Usage(
        input_tokens=33 + 19028,
        output_tokens=11395 + 193947,
        reasoning_tokens=193947,
        web_search_requests=21,
    )
    assert usage is not None and not usage.issues


def test_cost_matches_perplexitys_own_total(pricer: Pricer) -> None:
    """Tokens: (33 + 19,028) * 2 + 11,395 * 8 + 193,947 * 3 = 38,122 + 91,160 + 581,841
    = 711,123 per 1M = $0.711123, Perplexity's token lines (0.000066 + 0.038056 + 0.09116
    + 0.581841). Searches: 21 at $5 per 1K = $0.105, its ``search_queries_cost``. Total
    $0.816123 = its ``total_cost``. Clamping reasoning into the completion and leaving the
    searches out priced it at $0.091226."""
    cost = pricer.cost("sonar-deep-research", usage=extract_usage(DEEP_RESEARCH), at=NOW)
    assert cost is not None
    assert cost.fee_cost == Decimal("0.105")
    assert cost.total - cost.fee_cost == Decimal("0.711123")
    assert cost.total == Decimal("0.816123") == reported_cost(DEEP_RESEARCH)


def test_reported_cost_includes_search_fees() -> None:
    """Perplexity's own total (searches included) is the reported cost."""
    assert reported_cost(DEEP_RESEARCH) == Decimal("0.816123")


def test_sonar_pro_citations_are_not_input() -> None:
    """Only deep research bills citation tokens; sonar-pro's are reported, not billed."""
    usage = from_openai_compatible(
        {
            "model": "sonar-pro",
            "usage": {"prompt_tokens": 10, "completion_tokens": 20, "citation_tokens": 500},
        }
    )
    assert usage == Usage(input_tokens=10, output_tokens=20)


def test_reasoning_larger_than_completion_is_outside_for_an_unknown_provider() -> None:
    """Reasoning 50 cannot be part of a completion of 20, whatever the total says."""
    usage = from_openai_compatible(
        {"usage": {"prompt_tokens": 5, "completion_tokens": 20, "total_tokens": 25,
                   "reasoning_tokens": 50}}
    )  # fmt: skip
    assert usage == Usage(input_tokens=5, output_tokens=70, reasoning_tokens=50)
