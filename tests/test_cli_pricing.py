"""``tokentrail price`` and ``tokentrail models``."""

from __future__ import annotations

import json
from decimal import Decimal

from click.testing import CliRunner

from tokentrail.cli import cli


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_price_prints_an_aligned_breakdown() -> None:
    code, out = run(
        "price", "claude-sonnet-4-5", "--input", "12000", "--cache-read", "10000", "--output", "800"
    )
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("claude-sonnet-4-5 (anthropic)")
    assert "input (uncached)   2,000       3  $0.006000" in out
    assert "cache read        10,000     0.3  $0.003000" in out
    assert lines[-1].split() == ["total", "12,800", "$0.021000"]
    # every row of the table has the same width up to its last column
    widths = {len(line) for line in lines[1:]}
    assert len(widths) == 1


def test_price_json_has_the_cost_and_the_leaves() -> None:
    code, out = run(
        "price", "o3", "--input", "1000000", "--output", "1000000", "--at", "2025-06-01", "--json"
    )
    assert code == 0, out
    data = json.loads(out)
    assert Decimal(data["total"]) == 50
    assert data["effective_to"] == "2025-06-10"
    assert data["units"] == "USD per 1M tokens"
    leaves = {leaf["leaf"]: leaf for leaf in data["leaves"]}
    assert Decimal(leaves["output"]["price_per_mtok"]) == 40


def test_price_with_provider_variant_and_reasoning() -> None:
    code, out = run(
        "price", "gpt-4o", "--provider", "azure_openai", "--input", "1000000",
        "--variant", "batch", "--json",
    )  # fmt: skip
    assert code == 0, out
    data = json.loads(out)
    assert (Decimal(data["total"]), data["variant"], data["model"]) == (
        Decimal("1.25"),
        "batch",
        "gpt-4o",
    )
    code, out = run("price", "o3-mini", "--input", "0", "--output", "5000", "--reasoning", "4000")
    assert code == 0 and "reasoning" in out


def test_unknown_model_exits_1_with_suggestions() -> None:
    code, out = run("price", "claude-sonet-4-5", "--input", "10")
    assert code == 1
    assert "no price known for 'claude-sonet-4-5'" in out
    assert "Did you mean: claude-sonnet-4-5" in out
    assert "tokentrail models --search" in out


def test_inconsistent_counts_are_a_usage_error() -> None:
    code, out = run("price", "gpt-4o", "--input", "10", "--cache-read", "20")
    assert code == 2
    assert "--cache-read 20" in out and "exceed --input 10" in out


def test_bad_date_is_a_usage_error() -> None:
    code, out = run("price", "gpt-4o", "--input", "10", "--at", "yesterday")
    assert code == 2 and "YYYY-MM-DD" in out


def test_models_lists_filters_and_searches() -> None:
    code, out = run("models", "--provider", "anthropic", "--search", "sonnet-4-5")
    assert code == 0, out
    rows = [line for line in out.splitlines() if line.startswith("anthropic")]
    assert [r.split()[1] for r in rows] == ["claude-sonnet-4-5"]
    assert rows[0].split()[2:6] == ["3", "0.3", "3.75", "15"]


def test_models_json() -> None:
    code, out = run("models", "--provider", "x-ai", "--search", "grok-4", "--json")
    assert code == 0, out
    data = json.loads(out)
    assert data and all(m["provider"] == "xai" and "grok-4" in m["model"] for m in data)


def test_models_unknown_provider_lists_the_known_ones() -> None:
    code, out = run("models", "--provider", "nope")
    assert code == 1
    assert "known: openai, anthropic" in out


def test_local_models_cost_nothing_by_rule() -> None:
    result = CliRunner().invoke(
        cli, ["price", "llama3.1:8b", "--provider", "ollama", "--input", "900", "--output", "100"]
    )
    assert result.exit_code == 0, result.output
    assert "$0 for 1,000 tokens" in result.output
    as_json = CliRunner().invoke(cli, ["price", "llama3.1:8b", "--provider", "ollama", "--json"])
    assert json.loads(as_json.output)["total"] == "0"
    listed = CliRunner().invoke(cli, ["models", "--provider", "ollama"])
    assert listed.exit_code == 0 and "cost $0 by rule" in listed.output


def test_json_money_is_plain_decimal_notation() -> None:
    result = CliRunner().invoke(cli, ["price", "gpt-4o-mini", "--input", "1", "--json"])
    assert result.exit_code == 0, result.output
    assert "E-" not in result.output
    assert json.loads(result.output)["total"] == "0.00000015"


def test_price_per_1k_scales_the_rates_and_says_so() -> None:
    """claude-sonnet-4-5 input is $3 per 1M tokens = $0.003 per 1K; cache read $0.0003 per 1K
    (https://docs.anthropic.com/en/docs/about-claude/pricing). The cost does not change."""
    code, out = run(
        "price", "claude-sonnet-4-5", "--input", "12000", "--cache-read", "10000", "--per", "1k"
    )
    assert code == 0, out
    assert "USD/1K" in out.splitlines()[1]
    assert "input (uncached)   2,000   0.003  $0.006000" in out
    assert "cache read        10,000  0.0003  $0.003000" in out
    code, out = run("price", "claude-sonnet-4-5", "--input", "1000", "--per", "1k", "--json")
    data = json.loads(out)
    assert data["units"] == "USD per 1K tokens"
    leaves = {leaf["leaf"]: leaf for leaf in data["leaves"]}
    assert Decimal(leaves["input"]["price_per_ktok"]) == Decimal("0.003")
    assert "price_per_mtok" not in leaves["input"]
    assert Decimal(data["total"]) == Decimal("0.003")


def test_models_per_1k_in_text_and_json() -> None:
    code, out = run("models", "--provider", "anthropic", "--search", "sonnet-4-5", "--per", "1K")
    assert code == 0, out
    rows = [line for line in out.splitlines() if line.startswith("anthropic")]
    assert rows[0].split()[2:6] == ["0.003", "0.0003", "0.00375", "0.015"]
    assert "USD per 1K tokens" in out.splitlines()[-1]
    code, out = run(
        "models", "--provider", "anthropic", "--search", "sonnet-4-5", "--per", "1k", "--json"
    )
    entry = json.loads(out)[0]
    assert entry["units"] == "USD per 1K tokens"
    assert Decimal(entry["prices_per_ktok"]["output"]) == Decimal("0.015")
