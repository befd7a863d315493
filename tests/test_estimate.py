"""The token estimator: exact tiktoken counts offline, chat overhead, tools, the heuristic."""

from __future__ import annotations

import hashlib
import os
import statistics
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import tiktoken
import tiktoken.load
from benchmarks.prompt_set import mixed_prompts

from tokentrail import estimate
from tokentrail.estimate import (
    count_message_tokens,
    count_text_tokens,
    count_tools_tokens,
    counting,
    encoding_for,
    encoding_name_for,
    encodings,
    family_of,
    heuristic_count,
    looks_like_code,
)

LLAMA_STATIC = (
    Path(__import__("llama_index.core").core.__file__).parent / "_static" / "tiktoken_cache"
)


def _no_network(*args: object, **kwargs: object) -> bytes:
    raise AssertionError(f"tiktoken tried to download {args[:1]!r}")


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Fresh encoding caches, no tiktoken cache anywhere but llama-index's, no network."""
    monkeypatch.setattr(tiktoken.load, "read_file", _no_network)
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    monkeypatch.delenv("DATA_GYM_CACHE_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # tiktoken's default cache dir
    saved = dict(tiktoken.registry.ENCODINGS)
    tiktoken.registry.ENCODINGS.clear()
    estimate.clear_caches()
    yield tmp_path
    estimate.clear_caches()
    tiktoken.registry.ENCODINGS.clear()
    tiktoken.registry.ENCODINGS.update(saved)


def test_llama_index_cache_file_names_are_sha1_of_blob_urls() -> None:
    for name in ("cl100k_base", "o200k_base"):
        url = f"https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
        assert (LLAMA_STATIC / hashlib.sha1(url.encode()).hexdigest()).is_file()


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o", "o200k_base"),
        ("gpt-4o-mini-2024-07-18", "o200k_base"),
        ("openai/gpt-4.1-nano", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("o1", "o200k_base"),
        ("gpt-5", "o200k_base"),
        ("chatgpt-4o-latest", "o200k_base"),
        ("ft:gpt-4o-mini:acme::abc", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-4-turbo", "cl100k_base"),
        ("gpt-3.5-turbo-0125", "cl100k_base"),
        ("azure/gpt-35-turbo", "cl100k_base"),
        ("text-embedding-3-small", "cl100k_base"),
        ("claude-sonnet-4-5", None),
        ("gemini-2.5-pro", None),
        ("o1x", None),
    ],
)
def test_encoding_per_model(model: str, encoding: str | None) -> None:
    assert encoding_name_for(model) == encoding


def test_families() -> None:
    assert family_of("claude-3-5-haiku-latest") == "claude"
    assert family_of("us.anthropic.claude-3-haiku-20240307-v1:0") == "claude"
    assert family_of("gemini-2.0-flash") == "gemini"
    assert family_of("meta-llama/Llama-3.1-8B-Instruct") == "llama"
    assert family_of("mistral-large-latest") == "mistral"
    assert family_of("gpt-4o") == "openai"
    assert family_of("some-new-model") == "other"


def test_loads_from_llama_index_copy_offline_and_restores_env(offline: Path) -> None:
    enc = encoding_for("gpt-4o")
    assert enc is not None and enc.name == "o200k_base"
    assert "TIKTOKEN_CACHE_DIR" not in os.environ
    text = "Budgets stop the call before the money is spent."
    assert count_text_tokens(text, "gpt-4o") == len(enc.encode_ordinary(text))
    assert encoding_for("gpt-4").name == "cl100k_base"  # type: ignore[union-attr]


def test_user_cache_dir_is_respected_and_never_clobbered(
    offline: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    user_dir = tmp_path / "user-cache"
    user_dir.mkdir()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(user_dir))
    # The user's cache lacks the file: no download, no change to their setting, heuristic.
    assert encoding_for("gpt-4o") is None
    assert os.environ["TIKTOKEN_CACHE_DIR"] == str(user_dir)
    assert count_text_tokens("hello world, this is a test", "gpt-4o") > 0


def test_user_cache_dir_with_the_file_is_used(
    offline: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    user_dir = tmp_path / "user-cache"
    user_dir.mkdir()
    for f in LLAMA_STATIC.iterdir():
        (user_dir / f.name).write_bytes(f.read_bytes())
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(user_dir))
    assert encoding_for("gpt-4o") is not None
    assert os.environ["TIKTOKEN_CACHE_DIR"] == str(user_dir)


def test_corrupt_cache_file_is_not_handed_to_tiktoken(
    offline: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    user_dir = tmp_path / "user-cache"
    user_dir.mkdir()
    url = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"
    (user_dir / hashlib.sha1(url.encode()).hexdigest()).write_bytes(b"garbage")
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(user_dir))
    assert encoding_for("gpt-4o") is None  # tiktoken would have deleted it and downloaded
    assert count_text_tokens("still counted", "gpt-4o") > 0


def test_without_llama_index_files_falls_back_to_heuristic(
    offline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(encodings, "_llama_index_cache_dir", lambda: None)
    assert encoding_for("gpt-4o") is None
    assert count_text_tokens("The quick brown fox jumps over the lazy dog.", "gpt-4o") in range(
        8, 14
    )


def test_chat_overhead_matches_cookbook() -> None:
    # The cookbook's rule: 3 per message + role + content + 1 per name + 3 reply priming.
    enc = encoding_for("gpt-4o")
    assert enc is not None
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "name": "example_user", "content": "New synergies?"},
        {"role": "user", "content": [{"type": "text", "text": "Part one."}, "Part two."]},
    ]
    expected = 3
    for m in messages:
        expected += 3 + len(enc.encode_ordinary(m["role"]))  # type: ignore[arg-type]
        content = m["content"]
        parts = [content] if isinstance(content, str) else content
        for p in parts:
            text = p if isinstance(p, str) else p["text"]  # type: ignore[index]
            expected += len(enc.encode_ordinary(text))
        if "name" in m:
            expected += 1 + len(enc.encode_ordinary(m["name"]))  # type: ignore[arg-type]
    assert count_message_tokens(messages, model="gpt-4o") == expected


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-3.5-turbo", "claude-sonnet-4-5", None])
def test_plain_messages_count_as_the_general_rule_says(model: str | None) -> None:
    # count_message_tokens reads {"role": str, "content": str} dicts on a fast path; every
    # shape must count exactly what message_tokens (the general rule) counts.
    messages: list[dict[str, object]] = [
        {"role": "system", "content": "You are terse. " * 20},
        {"role": "user", "content": ""},
        {"role": "", "content": "no role"},
        {"role": "assistant", "content": "ok", "name": "bot"},  # name: general path
        {"role": "user", "content": [{"type": "text", "text": "parts"}]},
        {"type": "human", "content": "a LangChain-style dict"},
        {"role": "tool", "content": "42", "tool_calls": [{"name": "f", "arguments": "{}"}]},
    ]
    expected = sum(estimate.message_tokens(m, model) for m in messages)
    assert count_message_tokens(messages, model) == expected + estimate.TOKENS_REPLY_PRIMING
    for m in messages:
        one = count_message_tokens([m], model)
        assert one == estimate.message_tokens(m, model) + estimate.TOKENS_REPLY_PRIMING, m


def test_a_failing_tokenizer_on_the_fast_path_falls_back_to_an_estimate(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object) -> int:
        raise RuntimeError("tokenizer broke")

    monkeypatch.setattr(counting, "count_cached", broken)
    text = "x" * 300
    got = count_message_tokens([{"role": "user", "content": text}], "gpt-4o")
    assert got > len(text) // 3  # the general path's length estimate, not a crash or 0
    assert "token count failed" in caplog.text


def test_tools_add_tokens_and_images_count() -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the weather for a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City name"},
                    "unit": {"type": "string", "enum": ["c", "f"]},
                },
            },
        },
    }
    msgs = [{"role": "user", "content": "Weather in Paris?"}]
    base = count_message_tokens(msgs, model="gpt-4o")
    with_tools = count_message_tokens(msgs, model="gpt-4o", tools=[tool])
    assert with_tools - base == count_tools_tokens([tool], model="gpt-4o") > 20
    anthropic_tool = {"name": "get_weather", "description": "x", "input_schema": {}}
    assert count_tools_tokens([anthropic_tool], model="claude-sonnet-4-5") > 0
    image = [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]
    assert count_message_tokens([{"role": "user", "content": image}], "gpt-4o") >= 765


def test_never_raises_on_odd_input() -> None:
    assert count_text_tokens(None) == 0
    assert count_text_tokens("") == 0
    assert count_message_tokens(None) == 0
    odd = [{"role": None, "content": {"weird": object()}}, object(), {"content": 42}]
    assert count_message_tokens(odd, model="claude-3-opus") > 0  # type: ignore[arg-type]
    assert count_tools_tokens([object(), 3], model="gpt-4o") >= 0


def test_code_detection() -> None:
    code = "def f(x):\n    return {'a': x[0]}\n\nclass A:\n    pass\n"
    assert looks_like_code(code)
    assert not looks_like_code("Please summarize the following quarterly report for me.")


def test_heuristic_accuracy_against_tiktoken_on_mixed_prompts() -> None:
    """Report the heuristic's error vs cl100k_base's exact count on the mixed prompt set."""
    enc = encoding_for("gpt-4")
    assert enc is not None
    errors = []
    for _kind, text in mixed_prompts():
        exact = len(enc.encode_ordinary(text))
        guess = heuristic_count(text, "gpt-4")  # the OpenAI calibration (scale 1.0)
        errors.append((guess - exact) / exact)
    mape = statistics.mean(abs(e) for e in errors)
    total_bias = statistics.mean(errors)
    print(f"heuristic vs cl100k: MAPE {mape:.1%}, mean bias {total_bias:+.1%}, n={len(errors)}")
    assert len(errors) >= 20
    assert mape < 0.12
    assert max(abs(e) for e in errors) < 0.35


def test_heuristic_families_scale_up_for_claude() -> None:
    text = "The quick brown fox jumps over the lazy dog. " * 20
    assert heuristic_count(text, "claude-sonnet-4-5") > heuristic_count(text, "llama-3-70b")
