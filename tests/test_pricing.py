"""The cost engine against the vendors' published prices (USD per 1M tokens)."""

from __future__ import annotations

import logging
import os
import time
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokentrail import UnknownModelError, Usage
from tokentrail.errors import PricingError
from tokentrail.pricing.catalog import Catalog, catalog_dir, compile_file
from tokentrail.pricing.engine import Pricer
from tokentrail.pricing.leaves import LeafError, leaf_counts, leaf_prices
from tokentrail.pricing.names import name_candidates

M = 1_000_000
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("catalog-cache")


@pytest.fixture()
def pricer(cache_dir: Path) -> Pricer:
    return Pricer(Catalog(catalog_dir(), cache_dir=cache_dir), env=False)


def per_m(pricer: Pricer, model: str, field: str) -> Decimal:
    """The price per 1M tokens of one kind, measured on 100k tokens (below any tier)."""
    n = 100_000
    counts = {field: n}
    if field in ("reasoning_tokens", "output_audio_tokens"):
        counts["output_tokens"] = n
    elif field != "output_tokens":
        counts["input_tokens"] = n
        if field == "cache_write_1h_tokens":
            counts["cache_write_tokens"] = n
    c = pricer.cost(model, usage=Usage(**counts), at=NOW, strict=True)
    assert c is not None
    return c.total * (M // n)


# --------------------------------------------------------------------------- Anthropic


@pytest.mark.parametrize(
    ("model", "base"),
    [("claude-sonnet-4-5", "3"), ("claude-opus-4-1", "15"), ("claude-haiku-4-5", "1")],
)
def test_anthropic_cache_writes_cost_1_25x_and_2x_and_reads_0_1x(
    pricer: Pricer, model: str, base: str
) -> None:
    b = Decimal(base)
    assert per_m(pricer, model, "input_tokens") == b
    assert per_m(pricer, model, "cache_write_tokens") == b * Decimal("1.25")
    assert per_m(pricer, model, "cache_write_1h_tokens") == b * 2
    assert per_m(pricer, model, "cache_read_tokens") == b * Decimal("0.1")


def test_each_token_is_billed_once_across_the_leaves(pricer: Pricer) -> None:
    c = pricer.cost(
        "claude-sonnet-4-5",
        input_tokens=20_000,
        cache_read_tokens=10_000,
        cache_write_tokens=6_000,
        cache_write_1h_tokens=2_000,
        output_tokens=1_000,
        reasoning_tokens=400,
        at=NOW,
    )
    assert c is not None
    assert c.input_cost == Decimal(4_000 * 3) / M
    assert c.cache_read_cost == Decimal(10_000) * Decimal("0.3") / M
    assert c.cache_write_cost == (Decimal(4_000) * Decimal("3.75") + Decimal(2_000) * 6) / M
    assert c.output_cost == Decimal(600 * 15) / M
    assert c.reasoning_cost == Decimal(400 * 15) / M
    parts = c.input_cost + c.cache_read_cost + c.cache_write_cost + c.output_cost
    assert c.total == parts + c.reasoning_cost + c.audio_cost
    assert c.total == Decimal("0.057")  # 0.012 + 0.003 + 0.027 + 0.009 + 0.006


# --------------------------------------------------------------------------- OpenAI


@pytest.mark.parametrize(
    ("model", "input_price", "cached_price"),
    [("gpt-4o", "2.5", "1.25"), ("gpt-4.1", "2", "0.5"), ("gpt-5", "1.25", "0.125")],
)
def test_openai_cached_input_discounts_50_75_90_percent(
    pricer: Pricer, model: str, input_price: str, cached_price: str
) -> None:
    assert per_m(pricer, model, "input_tokens") == Decimal(input_price)
    assert per_m(pricer, model, "cache_read_tokens") == Decimal(cached_price)


def test_gpt_4o_2024_05_13_is_priced_apart_from_gpt_4o(pricer: Pricer) -> None:
    old = pricer.cost("gpt-4o-2024-05-13", input_tokens=M, output_tokens=M, at=NOW)
    new = pricer.cost("gpt-4o-2024-08-06", input_tokens=M, output_tokens=M, at=NOW)
    assert old is not None and new is not None
    assert (old.model, old.total) == ("gpt-4o-2024-05-13", Decimal(5 + 15))
    assert (new.model, new.total) == ("gpt-4o", Decimal("2.5") + 10)


def test_reasoning_tokens_are_billed_at_the_output_price(pricer: Pricer) -> None:
    c = pricer.cost("o3-mini", input_tokens=1_000, output_tokens=5_000, reasoning_tokens=4_000)
    assert c is not None
    assert c.reasoning_cost == Decimal(4_000) * Decimal("4.4") / M
    assert c.output_cost == Decimal(1_000) * Decimal("4.4") / M
    assert c.output_cost + c.reasoning_cost == Decimal(5_000) * Decimal("4.4") / M


def test_o3_price_cut_on_2025_06_10(pricer: Pricer) -> None:
    before = pricer.cost("o3", input_tokens=M, output_tokens=M, at=datetime(2025, 6, 9, 23, 59))
    after = pricer.cost("o3", input_tokens=M, output_tokens=M, at=date(2025, 6, 10))
    assert before is not None and after is not None
    assert before.total == Decimal(10 + 40)
    assert before.effective_to == date(2025, 6, 10)
    assert after.total == Decimal(2 + 8)
    assert after.effective_from == date(2025, 6, 10)


def test_price_in_force_follows_the_timezone_of_the_call(pricer: Pricer) -> None:
    # 2025-06-09 22:00 in New York is already 2025-06-10 in UTC.
    from zoneinfo import ZoneInfo

    at = datetime(2025, 6, 9, 22, 0, tzinfo=ZoneInfo("America/New_York"))
    c = pricer.cost("o3", input_tokens=M, at=at)
    assert c is not None and c.total == Decimal(2)


def test_batch_variant_is_half_price(pricer: Pricer) -> None:
    for model, standard in (("gpt-4o", Decimal("12.5")), ("claude-sonnet-4-5", Decimal(18))):
        # 100k in + 1M out: below the 200k long-context tier
        n = 100_000
        standard = standard - (standard - per_m(pricer, model, "output_tokens")) * 9 / 10
        std = pricer.cost(model, input_tokens=n, output_tokens=M, at=NOW)
        batch = pricer.cost(model, input_tokens=n, output_tokens=M, at=NOW, variant="batch")
        assert std is not None and batch is not None
        assert std.total == standard
        assert batch.total == standard / 2
        assert (std.variant, batch.variant) == (None, "batch")


def test_unknown_variant_prices_at_standard_rate_or_raises_when_strict(
    pricer: Pricer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="tokentrail"):
        c = pricer.cost("gpt-4o", input_tokens=M, variant="moon", at=NOW)
    assert c is not None and c.total == Decimal("2.5") and c.variant is None
    assert "moon" in caplog.text
    with pytest.raises(PricingError, match="moon"):
        pricer.cost("gpt-4o", input_tokens=M, variant="moon", at=NOW, strict=True)


# --------------------------------------------------------------------------- long context


def test_gemini_2_5_pro_above_200k_prices_the_whole_request_at_the_tier(pricer: Pricer) -> None:
    at_limit = pricer.cost("gemini-2.5-pro", input_tokens=200_000, output_tokens=M)
    above = pricer.cost("gemini-2.5-pro", input_tokens=200_001, output_tokens=M)
    assert at_limit is not None and above is not None
    assert at_limit.total == Decimal("0.25") + 10
    assert at_limit.tier_threshold is None
    assert above.total == Decimal(200_001) * Decimal("2.5") / M + 15
    assert above.tier_threshold == 200_000


def test_claude_sonnet_4_5_above_200k(pricer: Pricer) -> None:
    c = pricer.cost(
        "claude-sonnet-4-5", input_tokens=300_000, cache_read_tokens=100_000, output_tokens=10_000
    )
    assert c is not None
    assert c.input_cost == Decimal(200_000 * 6) / M
    assert c.cache_read_cost == Decimal(100_000) * Decimal("0.6") / M
    assert c.output_cost == Decimal(10_000) * Decimal("22.5") / M


def test_claude_sonnet_4_above_200k_is_a_catalog_decision(pricer: Pricer) -> None:
    c = pricer.cost("claude-sonnet-4-20250514", input_tokens=250_000, output_tokens=M)
    assert c is not None
    assert c.total == Decimal(250_000 * 6) / M + Decimal("22.5")
    entry = pricer.find("claude-sonnet-4-20250514")
    assert entry is not None and entry.note and "Long context" in entry.note


# --------------------------------------------------------------------------- spellings


@pytest.mark.parametrize(
    ("model", "provider", "expected_id", "input_price"),
    [
        ("anthropic.claude-3-5-sonnet-20240620-v1:0", "bedrock", None, "3"),
        ("global.anthropic.claude-sonnet-4-5-20250929-v1:0", "aws", None, "3"),
        # geographic cross-region profiles carry AWS's 10% regional uplift
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "amazon_bedrock", None, "3.3"),
        ("claude-sonnet-4-5@20250929", "vertex_ai", "claude-sonnet-4-5", "3"),
        ("gemini-2.5-pro", "google-vertex", "gemini-2.5-pro", "1.25"),
        (
            "projects/p/locations/us-central1/publishers/google/models/gemini-2.5-flash",
            "vertex_ai",
            "gemini-2.5-flash",
            "0.3",
        ),
        ("models/gemini-2.5-flash", "gemini", "gemini-2.5-flash", "0.3"),
        ("openai/gpt-4o", None, "gpt-4o", "2.5"),
        ("gpt-35-turbo", "azure_openai", "gpt-3.5-turbo", "0.5"),
        ("gpt-4o-2024-11-20", "azure", "gpt-4o", "2.5"),
        ("gpt-5.2-20251211", None, "gpt-5.2", "1.75"),
        ("grok-4", "x-ai", "grok-4-0709", "3"),
    ],
)
def test_provider_spellings_resolve_to_the_right_price(
    pricer: Pricer, model: str, provider: str | None, expected_id: str | None, input_price: str
) -> None:
    c = pricer.cost(model, provider=provider, input_tokens=100_000, at=NOW, strict=True)
    assert c is not None
    assert c.total * 10 == Decimal(input_price)
    if expected_id is not None:
        assert c.model == expected_id


def test_name_candidates_strip_bedrock_vertex_and_dates() -> None:
    names = name_candidates("us.anthropic.claude-sonnet-4-5-20250929-v1:0")
    assert names[0] == "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    assert "claude-sonnet-4-5-20250929" in names and names[-1] == "claude-sonnet-4-5"
    assert name_candidates("claude-3-5-sonnet-v2@20241022")[1] == "claude-3-5-sonnet-v2"
    assert "gpt-5.2-2025-12-11" in name_candidates("gpt-5.2-20251211")


# --------------------------------------------------------------------------- rules


def test_unknown_model_is_none_with_one_warning(
    pricer: Pricer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="tokentrail"):
        assert pricer.cost("no-such-model-xyz", input_tokens=10) is None
        assert pricer.cost("no-such-model-xyz", input_tokens=20) is None
    hits = [r for r in caplog.records if "no-such-model-xyz" in r.getMessage()]
    assert len(hits) == 1


def test_unknown_model_raises_when_strict(pricer: Pricer) -> None:
    with pytest.raises(UnknownModelError, match="no-such-model-xyz"):
        pricer.cost("no-such-model-xyz", input_tokens=10, strict=True)


@pytest.mark.parametrize("provider", ["ollama", "llama.cpp", "vllm", "LM Studio", "lm-studio"])
def test_local_providers_cost_zero(pricer: Pricer, provider: str) -> None:
    c = pricer.cost("llama3.1:8b", provider=provider, input_tokens=M, output_tokens=M)
    assert c is not None and c.total == 0 and c.source == "catalog"


def test_provider_reported_cost_wins(pricer: Pricer) -> None:
    c = pricer.cost(
        "anthropic/claude-sonnet-4.5",
        provider="openrouter",
        input_tokens=M,
        reported_cost="0.0123",
    )
    assert c is not None
    assert (c.total, c.source) == (Decimal("0.0123"), "provider")


def test_bad_reported_cost_is_logged_not_raised(
    pricer: Pricer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="tokentrail"):
        assert pricer.cost("gpt-4o", input_tokens=1, reported_cost="lots") is None
    assert "lots" in caplog.text


def test_usage_object_and_keyword_counts_combine(pricer: Pricer) -> None:
    c = pricer.cost("gpt-4o", usage=Usage(input_tokens=M), output_tokens=M)
    assert c is not None and c.total == Decimal("12.5")
    d = pricer.cost("gpt-4o", usage={"input_tokens": M})
    assert d is not None and d.total == Decimal("2.5")


def test_matching_is_cached(pricer: Pricer) -> None:
    first = pricer.find("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "bedrock")
    assert first is pricer.find("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "bedrock")
    assert ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "bedrock") in pricer._lookups


def test_leaf_prices_fall_back_to_the_parent_price() -> None:
    prices = leaf_prices({"input": Decimal(2), "output": Decimal(8)})
    # The fees (request, web_search) have no parent: no price unless the catalog has one.
    assert prices == (Decimal(2),) * 5 + (Decimal(8),) * 3 + (
        Decimal(2),
        Decimal(8),
        Decimal(2),
        Decimal(2),  # input_video -> input
        None,
        None,
    )
    with_cache = leaf_prices({"input": Decimal(3), "cache_write": Decimal("3.75"), "output": 1})  # type: ignore[dict-item]
    assert with_cache[3] == Decimal("3.75")  # 1h write falls back to the 5m write price


def test_leaf_errors_name_the_offending_fields() -> None:
    bad = Usage(input_tokens=10, cache_read_tokens=8, input_audio_tokens=5)
    with pytest.raises(
        LeafError, match=r"cache_read_tokens=8.*input_audio_tokens=5.*input_tokens=10"
    ):
        leaf_counts(bad)
    with pytest.raises(LeafError, match=r"unknown price keys.*'inptu'"):
        leaf_prices({"inptu": Decimal(1)})


# --------------------------------------------------------------------------- overrides


def test_register_overrides_the_catalog(pricer: Pricer) -> None:
    pricer.register("gpt-4o", provider="openai", input="1", output="2")
    c = pricer.cost("gpt-4o", provider="openai", input_tokens=M, output_tokens=M)
    assert c is not None and (c.total, c.source) == (Decimal(3), "override")


def test_register_builds_a_price_history(pricer: Pricer) -> None:
    pricer.register("house-model", input="4", output="8")
    pricer.register("house-model", input="2", output="4", effective_from="2026-01-01")
    old = pricer.cost("house-model", input_tokens=M, at=date(2025, 12, 31))
    new = pricer.cost("house-model", input_tokens=M, at=date(2026, 1, 1))
    assert old is not None and new is not None
    assert (old.total, new.total) == (Decimal(4), Decimal(2))


def test_register_rejects_bad_prices(pricer: Pricer) -> None:
    with pytest.raises(PricingError, match="input"):
        pricer.register("x", input="-1")
    with pytest.raises(PricingError, match="at least one price"):
        pricer.register("x")


USER_FILE = """\
catalog_version: mine-1
units: USD per 1M tokens
provider: {id: openai, name: OpenAI}
models:
  - id: ft:gpt-4o-mini:acme
    match: [{prefix: "ft:gpt-4o-mini:acme"}]
    prices: {input: "0.3", output: "1.2"}
"""


def test_load_file_and_env_variable(tmp_path: Path, cache_dir: Path, monkeypatch) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(USER_FILE)
    pricer = Pricer(Catalog(catalog_dir(), cache_dir=cache_dir), env=False)
    assert pricer.load_file(path) == 1
    c = pricer.cost("ft:gpt-4o-mini:acme:abc123", provider="openai", input_tokens=M)
    assert c is not None and (c.total, c.source) == (Decimal("0.3"), "override")

    monkeypatch.setenv("TOKENTRAIL_PRICING", str(path))
    from_env = Pricer(Catalog(catalog_dir(), cache_dir=cache_dir))
    d = from_env.cost("ft:gpt-4o-mini:acme:xyz", provider="openai", output_tokens=M)
    assert d is not None and d.total == Decimal("1.2")


def test_invalid_user_file_names_the_problem(tmp_path: Path, cache_dir: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(USER_FILE.replace('input: "0.3"', 'input: "cheap"').replace("1M", "1K"))
    pricer = Pricer(Catalog(catalog_dir(), cache_dir=cache_dir), env=False)
    with pytest.raises(PricingError) as err:
        pricer.load_file(path)
    assert "units" in str(err.value) and "cheap" in str(err.value)


def test_bad_env_file_is_logged_not_raised(
    tmp_path: Path, cache_dir: Path, monkeypatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TOKENTRAIL_PRICING", str(tmp_path / "missing.yaml"))
    pricer = Pricer(Catalog(catalog_dir(), cache_dir=cache_dir))
    with caplog.at_level(logging.WARNING, logger="tokentrail"):
        c = pricer.cost("gpt-4o", input_tokens=M)
    assert c is not None and c.total == Decimal("2.5")
    assert "TOKENTRAIL_PRICING" in caplog.text


# --------------------------------------------------------------------------- the catalog


def test_every_shipped_catalog_file_validates() -> None:
    files = sorted(catalog_dir().glob("*.yaml"))
    assert len(files) >= 15
    providers = set()
    for path in files:
        data = compile_file(path)
        assert data["units"] == "USD per 1M tokens"
        if "provider" in data:
            assert data["provider"]["id"] == path.stem
            providers.add(path.stem)
    expected = {
        "openai", "anthropic", "google", "bedrock", "azure", "mistral", "xai", "deepseek",
        "groq", "together", "fireworks", "cerebras", "cohere",
    }  # fmt: skip
    assert expected <= providers


def test_compiled_catalog_is_cached_and_refreshed_when_the_file_changes(tmp_path: Path) -> None:
    directory = tmp_path / "catalog"
    directory.mkdir()
    path = directory / "acme.yaml"
    path.write_text(USER_FILE.replace("id: openai, name: OpenAI", "id: acme, name: Acme"))
    cache = tmp_path / "cache"
    assert Pricer(Catalog(directory, cache_dir=cache), env=False).cost(
        "ft:gpt-4o-mini:acme", provider="acme", input_tokens=M
    ).total == Decimal("0.3")  # type: ignore[union-attr]
    assert len(list(cache.glob("catalog-acme-*.json"))) == 1
    path.write_text(path.read_text().replace('"0.3"', '"0.4"'))
    os.utime(path, (time.time() + 5, time.time() + 5))
    fresh = Pricer(Catalog(directory, cache_dir=cache), env=False)
    assert fresh.cost("ft:gpt-4o-mini:acme", provider="acme", input_tokens=M).total == Decimal(
        "0.4"
    )  # type: ignore[union-attr]
    assert len(list(cache.glob("catalog-acme-*.json"))) == 1


def test_module_level_api(monkeypatch) -> None:
    import tokentrail
    from tokentrail import pricing

    c = tokentrail.cost("claude-sonnet-4-5", input_tokens=12_000, output_tokens=800,
                        cache_read_tokens=10_000)  # fmt: skip
    assert c is not None and c.total == Decimal("0.021")
    assert pricing.zero_cost("gpt-4o", "OpenAI").provider == "openai"
    assert pricing.catalog_version()
    assert any(e.id == "gpt-4o" for e in pricing.models("openai"))


_COUNTS = st.integers(min_value=0, max_value=3_000_000)
_LEAF_PRICER: list[Pricer] = []


def _leaf_pricer() -> Pricer:
    """A pricer knowing ``leaf-model``, with a different price for every leaf but one."""
    if not _LEAF_PRICER:
        pricer = Pricer()
        # USD per 1M tokens; reasoning has no price of its own: it falls back to output's.
        pricer.register(
            "leaf-model",
            provider="acme",
            input="2",
            output="8",
            cache_read="0.5",
            cache_write="3",
            cache_write_1h="6",
            input_audio="4",
            output_audio="16",
        )
        _LEAF_PRICER.append(pricer)
    return _LEAF_PRICER[0]


@settings(max_examples=300, deadline=None)
@given(
    inp=_COUNTS,
    out=_COUNTS,
    read=_COUNTS,
    write=_COUNTS,
    write_1h=_COUNTS,
    audio_in=_COUNTS,
    reasoning=_COUNTS,
    audio_out=_COUNTS,
)
def test_each_token_is_billed_once_at_its_leaf_price(
    inp: int,
    out: int,
    read: int,
    write: int,
    write_1h: int,
    audio_in: int,
    reasoning: int,
    audio_out: int,
):
    pricer = _leaf_pricer()
    usage = Usage(inp, out, read, write, write_1h, audio_in, reasoning, audio_out)
    text_in = inp - read - write - audio_in
    text_out = out - reasoning - audio_out
    write_5m = write - write_1h
    if min(text_in, text_out, write_5m) < 0:  # counts that cannot be split into leaves
        with pytest.raises(PricingError):
            pricer.cost("leaf-model", provider="acme", usage=usage, strict=True)
        assert pricer.cost("leaf-model", provider="acme", usage=usage) is None
        return
    cost = pricer.cost("leaf-model", provider="acme", usage=usage, strict=True)
    assert cost is not None
    m = Decimal(1_000_000)
    assert cost.input_cost == text_in * Decimal(2) / m
    assert cost.cache_read_cost == read * Decimal("0.5") / m
    assert cost.cache_write_cost == (write_5m * 3 + write_1h * 6) / m
    assert cost.output_cost == text_out * Decimal(8) / m
    assert cost.reasoning_cost == reasoning * Decimal(8) / m
    assert cost.audio_cost == (audio_in * 4 + audio_out * 16) / m
    billed = (
        text_in * 2
        + read * Decimal("0.5")
        + write_5m * 3
        + write_1h * 6
        + audio_in * 4
        + text_out * 8
        + reasoning * 8
        + audio_out * 16
    )
    assert cost.total == billed / m
    assert (cost.model, cost.source, cost.currency) == ("leaf-model", "override", "USD")
