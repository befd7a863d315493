"""Every stored provider payload extracts to the counts worked out by hand from its docs.

Each fixture in ``fixtures/payloads/`` holds a realistic response (or stream) in one
provider's documented shape, the dialect it belongs to, and the expected canonical counts
(fields not listed are 0).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tokentrail.extract import DIALECTS, detect_dialect, extract_usage
from tokentrail.usage import COUNT_FIELDS, Usage

FIXTURES = sorted((Path(__file__).parent / "fixtures" / "payloads").glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


STREAMS = [path for path in FIXTURES if isinstance(load(path)["payload"], list)]


def expected_usage(case: dict[str, Any]) -> dict[str, int]:
    return {name: case["expected"].get(name, 0) for name in COUNT_FIELDS}


def counts(usage: Usage | None) -> dict[str, int] | None:
    return None if usage is None else {name: getattr(usage, name) for name in COUNT_FIELDS}


def test_there_is_a_fixture_for_every_dialect_family() -> None:
    dialects = {load(path)["dialect"] for path in FIXTURES}
    assert {
        "openai_chat",
        "openai_responses",
        "openai_stream",
        "anthropic",
        "anthropic_stream",
        "gemini",
        "bedrock",
        "ollama",
        "openrouter",
        "deepseek",
        "groq",
        "together",
        "mistral",
        "cerebras",
        "vllm",
        "xai",
        "langchain",
        "langchain_llm_output",
    } <= dialects


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_dialect_extractor_gives_documented_counts(path: Path) -> None:
    case = load(path)
    usage = DIALECTS[case["dialect"]](case["payload"], case["model"])
    assert counts(usage) == expected_usage(case)
    assert usage is not None and usage.issues == ()


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_detection_finds_the_dialect(path: Path) -> None:
    case = load(path)
    assert detect_dialect(case["payload"], model=case["model"]) == case["detect"]


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_extract_usage_without_a_dialect_gives_the_same_counts(path: Path) -> None:
    case = load(path)
    assert counts(extract_usage(case["payload"], model=case["model"])) == expected_usage(case)


@pytest.mark.parametrize("path", STREAMS, ids=lambda p: p.stem)
def test_stream_fixtures_work_from_a_one_shot_iterator(path: Path) -> None:
    case = load(path)
    assert counts(extract_usage(iter(case["payload"]))) == expected_usage(case)
