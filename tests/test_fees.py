"""Fees billed per call, not per token: request fees and web searches.

Prices (USD):

* Perplexity request fee per 1K requests by search context size, low (the default) /
  medium / high: sonar $5 / $8 / $12, sonar-pro $6 / $10 / $14; sonar tokens $1 / $1 per
  1M; sonar-deep-research searches $5 per 1K
  (https://docs.perplexity.ai/getting-started/pricing, "Request Pricing by Search Context
  Size"). The response's ``usage`` reports ``search_context_size`` and
  ``num_search_queries`` (API reference, Chat Completions response).
* Anthropic web search $10 per 1K searches, reported as
  ``usage.server_tool_use.web_search_requests``; claude-sonnet-4-5 $3 in, $0.30 cache read,
  $3.75 cache write, $15 out per 1M (https://docs.claude.com/en/docs/about-claude/pricing,
  "Web search" and model tables; payload from the web search tool page's example response).
* OpenAI web search tool calls $10 per 1K calls, one ``web_search_call`` output item each
  (https://openai.com/api/pricing, "Built-in tools").
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tokentrail import Tracker, Usage
from tokentrail.extract import extract_usage, from_anthropic, service_tier_of
from tokentrail.extract.payload import read_payload
from tokentrail.pricing.catalog import Catalog, catalog_dir
from tokentrail.pricing.engine import Pricer

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def pricer(tmp_path_factory: pytest.TempPathFactory) -> Pricer:
    return Pricer(Catalog(catalog_dir(), cache_dir=tmp_path_factory.mktemp("cache")), env=False)


def _sonar(size: str | None) -> dict[str, Any]:
    usage: dict[str, Any] = {"prompt_tokens": 1000, "completion_tokens": 200, "total_tokens": 1200}
    if size is not None:
        usage["search_context_size"] = size
    return {"id": "r-1", "model": "sonar", "object": "chat.completion", "usage": usage}


@pytest.mark.parametrize(
    ("size", "variant", "total"),
    [
        # 1,200 tokens at $1 per 1M = $0.0012, plus one request at $5 / $8 / $12 per 1K
        (None, None, "0.0062"),
        ("low", None, "0.0062"),
        ("medium", "search_medium", "0.0092"),
        ("high", "search_high", "0.0132"),
    ],
)
def test_sonar_request_fee_follows_the_search_context_size(
    pricer: Pricer, size: str | None, variant: str | None, total: str
) -> None:
    payload = _sonar(size)
    info = read_payload(payload)
    assert info.price_variant == variant == service_tier_of(payload)
    cost = pricer.cost("sonar", provider="perplexity", usage=info.usage, variant=variant, at=NOW)
    assert cost is not None
    assert cost.fee_cost == Decimal(total) - Decimal("0.0012")
    assert cost.total == Decimal(total)


def test_record_reads_the_search_context_size_from_the_usage(tmp_path: Path) -> None:
    """``tracker.record(usage=response.usage)`` of a high-context sonar call bills the
    high request fee: 1,200 tokens at $1 per 1M plus $12 per 1K requests."""
    with Tracker(tmp_path / "u.duckdb") as tracker:
        rec = tracker.record(model="sonar", provider="perplexity", usage=_sonar("high")["usage"])
    assert rec.price_variant == "search_high"
    assert rec.cost is not None and rec.cost.total == Decimal("0.0132")


def test_sonar_pro_high_context(pricer: Pricer) -> None:
    """3,000 + 3,000 per 1M for 1,000 in / 200 out = $0.006, plus $14 per 1K = $0.02."""
    cost = pricer.cost(
        "sonar-pro", usage=Usage(input_tokens=1000, output_tokens=200), variant="search_high"
    )
    assert cost is not None and cost.total == Decimal("0.02")


def test_a_model_without_fees_bills_none(pricer: Pricer) -> None:
    """gpt-4o-mini has no request fee; a call that ran no search pays no search fee."""
    cost = pricer.cost("gpt-4o-mini", usage=Usage(input_tokens=1000, output_tokens=100), at=NOW)
    assert cost is not None and cost.fee_cost == 0


# Anthropic's web search tool page, example response usage.
ANTHROPIC_WEB_SEARCH = {
    "input_tokens": 105,
    "output_tokens": 6039,
    "cache_read_input_tokens": 7123,
    "cache_creation_input_tokens": 7345,
    "server_tool_use": {"web_search_requests": 1},
}


def test_anthropic_web_searches_are_billed(pricer: Pricer) -> None:
    """Input 105 + 7,123 + 7,345; tokens 105 x 3 + 7,123 x 0.3 + 7,345 x 3.75 + 6,039 x 15
    = 315 + 2,136.9 + 27,543.75 + 90,585 = 120,580.65 per 1M = $0.12058065; one search at
    $10 per 1K = $0.01; total $0.13058065."""
    usage = from_anthropic(ANTHROPIC_WEB_SEARCH)
    assert usage is not None and usage.web_search_requests == 1
    cost = pricer.cost("claude-sonnet-4-5", provider="anthropic", usage=usage, at=NOW)
    assert cost is not None
    assert cost.fee_cost == Decimal("0.01")
    assert cost.total == Decimal("0.13058065")


def test_anthropic_sdk_usage_object_keeps_the_searches() -> None:
    types = pytest.importorskip("anthropic.types")
    tools = {"web_search_requests": 1, "web_fetch_requests": 0}
    sdk = types.Usage.model_validate({**ANTHROPIC_WEB_SEARCH, "server_tool_use": tools})
    usage = extract_usage(sdk, dialect="anthropic")
    assert usage is not None and usage.web_search_requests == 1


def test_openai_responses_count_web_search_calls(pricer: Pricer) -> None:
    """Two ``web_search_call`` items: 2 x $10 per 1K = $0.02 on top of the tokens."""
    response = {
        "id": "resp_1",
        "object": "response",
        "model": "gpt-4.1",
        "output": [
            {"type": "web_search_call", "id": "ws_1", "status": "completed"},
            {"type": "web_search_call", "id": "ws_2", "status": "completed"},
            {"type": "message", "id": "msg_1", "role": "assistant", "content": []},
        ],
        "usage": {"input_tokens": 1000, "output_tokens": 100, "total_tokens": 1100},
    }
    usage = extract_usage(response)
    assert usage is not None and usage.web_search_requests == 2
    cost = pricer.cost("gpt-4.1", provider="openai", usage=usage, at=NOW)
    assert cost is not None and cost.fee_cost == Decimal("0.02")


DEEP_RESEARCH_USAGE = {
    "prompt_tokens": 33,
    "completion_tokens": 11395,
    "total_tokens": 11428,
    "citation_tokens": 19028,
    "num_search_queries": 21,
    "reasoning_tokens": 193947,
}


def _stored(tracker_target: str | Path) -> None:
    with Tracker(tracker_target) as tracker:
        tracker.record(
            model="sonar-deep-research", provider="perplexity", usage=DEEP_RESEARCH_USAGE, ts=NOW
        )


def test_fees_are_stored_in_their_columns(tmp_path: Path) -> None:
    """Perplexity's recorded deep-research call (docs.perplexity.ai pricing guide): its
    21 searches ($0.105) are in ``fee_cost`` and the total is Perplexity's $0.816123."""
    db = tmp_path / "usage.duckdb"
    _stored(db)
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute("SELECT web_search_requests, fee_cost, total_cost FROM usage").fetchone()
    assert row == (21, Decimal("0.105"), Decimal("0.816123"))


def test_fees_are_stored_on_postgresql(pg_url: str) -> None:
    from tokentrail.store.paths import PostgresUrl
    from tokentrail.store.postgres_reading import reading_postgres

    _stored(pg_url)
    with reading_postgres(PostgresUrl(pg_url)) as con:
        row = con.execute("SELECT web_search_requests, fee_cost, total_cost FROM usage").fetchone()
    assert tuple(row) == (21, Decimal("0.105"), Decimal("0.816123"))


def test_a_database_of_migration_4_gains_the_fee_columns(tmp_path: Path) -> None:
    from tokentrail.store.schema import MIGRATIONS

    db = tmp_path / "old.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE tokentrail_migrations (version INTEGER, name VARCHAR)")
        for version, name, statements in MIGRATIONS[:4]:
            for statement in statements:
                con.execute(statement)
            con.execute("INSERT INTO tokentrail_migrations VALUES (?, ?)", [version, name])
    _stored(db)
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute("SELECT web_search_requests, fee_cost FROM usage").fetchone()
    assert row == (21, Decimal("0.105"))


def test_openai_sdk_response_object_counts_its_web_searches() -> None:
    """The ``openai`` SDK's ``Response`` (what LlamaIndex hands over as ``raw``)."""
    responses = pytest.importorskip("openai.types.responses")
    raw = responses.Response.model_validate(
        {
            "id": "resp_1",
            "object": "response",
            "created_at": 1,
            "model": "gpt-4.1",
            "output": [
                {
                    "type": "web_search_call",
                    "id": "ws_1",
                    "status": "completed",
                    "action": {"type": "search", "query": "tokentrail"},
                },
            ],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": {
                "input_tokens": 1000,
                "output_tokens": 100,
                "total_tokens": 1100,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens_details": {"reasoning_tokens": 0},
            },
        }
    )
    from tokentrail.extract.response import read_response

    info = read_response(raw)
    assert info.usage is not None and info.usage.web_search_requests == 1


def test_a_call_that_used_nothing_pays_no_request_fee(pricer: Pricer) -> None:
    """A failed call with no tokens and no searches is not billed Perplexity's request fee."""
    cost = pricer.cost("sonar", provider="perplexity", usage=Usage(), at=NOW)
    assert cost is not None and cost.total == 0
    one = pricer.cost("sonar", provider="perplexity", usage=Usage(input_tokens=1), at=NOW)
    assert one is not None and one.fee_cost == Decimal("0.005")


def test_registered_fees_are_billed() -> None:
    """A registered request fee of $2 and searches at $4 per 1K: one request and three
    searches = 0.002 + 0.012 = $0.014, on top of 1,000 input tokens at $1 per 1M."""
    from tokentrail import pricing

    pricing.clear_overrides()
    try:
        pricing.register("my-search-model", input="1", request="2", web_search="4")
        cost = pricing.cost("my-search-model", input_tokens=1000, web_search_requests=3)
    finally:
        pricing.clear_overrides()
    assert cost is not None
    assert (cost.fee_cost, cost.total) == (Decimal("0.014"), Decimal("0.015"))
