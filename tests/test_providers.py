"""Provider inference: LangChain's ls_provider values, model names, base URLs, class names."""

from __future__ import annotations

from typing import Any

import pytest

from tokentrail.providers import (
    LOCAL_PROVIDERS,
    PROVIDERS,
    infer_provider,
    normalize_provider,
    provider_from_model,
)


@pytest.mark.parametrize(
    ("ls_provider", "expected"),
    [
        ("openai", "openai"),
        ("anthropic", "anthropic"),
        ("azure", "azure"),
        ("azure_ai", "azure"),
        ("google_genai", "google"),
        ("google_vertexai", "google"),
        ("bedrock", "bedrock"),
        ("amazon_bedrock", "bedrock"),
        ("mistralai", "mistral"),
        ("groq", "groq"),
        ("xai", "xai"),
        ("deepseek", "deepseek"),
        ("ollama", "ollama"),
        ("together", "together"),
        ("fireworks", "fireworks"),
        ("cohere", "cohere"),
        ("perplexity", "perplexity"),
        ("openrouter", "openrouter"),
        ("openai-codex", "openai"),
        ("x-ai", "xai"),
        ("vertex_ai", "google"),
        ("Google-GenAI", "google"),
        (" Anthropic ", "anthropic"),
    ],
)
def test_langchain_ls_provider_values(ls_provider: str, expected: str) -> None:
    assert normalize_provider(ls_provider) == expected
    assert infer_provider(ls_provider=ls_provider) == expected


def test_every_stable_id_normalizes_to_itself() -> None:
    assert all(normalize_provider(p) == p for p in PROVIDERS)
    assert set(PROVIDERS) >= LOCAL_PROVIDERS


@pytest.mark.parametrize("name", [None, "", "   ", 42, ["openai"], {"a": 1}])
def test_normalize_provider_gives_none_for_nothing_or_non_strings(name: Any) -> None:
    assert normalize_provider(name) is None


def test_unknown_provider_names_are_kept_lowercased() -> None:
    assert normalize_provider("HuggingFace") == "huggingface"


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-4o-2024-08-06", "openai"),
        ("o3-mini", "openai"),
        ("o1", "openai"),
        ("chatgpt-4o-latest", "openai"),
        ("text-embedding-3-small", "openai"),
        ("ft:gpt-4o-mini-2024-07-18:acme::9abc", "openai"),
        ("openai/gpt-4o", "openai"),
        ("claude-sonnet-4-5-20250929", "anthropic"),
        ("anthropic/claude-3.5-haiku", "anthropic"),
        ("gemini-2.5-pro", "google"),
        ("models/gemini-2.0-flash", "google"),
        ("text-embedding-004", "google"),
        ("gemma-3-27b-it", "google"),
        ("us.anthropic.claude-3-7-sonnet-20250219-v1:0", "bedrock"),
        ("anthropic.claude-3-haiku-20240307-v1:0", "bedrock"),
        ("amazon.nova-pro-v1:0", "bedrock"),
        ("meta.llama3-1-70b-instruct-v1:0", "bedrock"),
        ("openai.gpt-oss-120b-1:0", "bedrock"),
        ("mistral-large-latest", "mistral"),
        ("codestral-2501", "mistral"),
        ("grok-4-0709", "xai"),
        ("deepseek-reasoner", "deepseek"),
        ("command-r-plus", "cohere"),
        ("sonar-pro", "perplexity"),
        ("accounts/fireworks/models/llama-v3p1-70b-instruct", "fireworks"),
        ("llama3.2:latest", None),
        ("my-azure-deployment", None),
    ],
)
def test_provider_from_model(model: str, expected: str | None) -> None:
    assert provider_from_model(model) == expected


@pytest.mark.parametrize("model", [None, 3, b"gpt-4o"])
def test_provider_from_model_never_raises(model: Any) -> None:
    assert provider_from_model(model) is None


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("https://api.openai.com/v1", "openai"),
        ("https://my-resource.openai.azure.com/", "azure"),
        ("https://my-resource.services.ai.azure.com/models", "azure"),
        ("https://api.anthropic.com", "anthropic"),
        ("https://generativelanguage.googleapis.com/v1beta/openai/", "google"),
        ("https://us-central1-aiplatform.googleapis.com/v1", "google"),
        ("https://bedrock-runtime.us-east-1.amazonaws.com", "bedrock"),
        ("https://api.mistral.ai/v1", "mistral"),
        ("https://api.x.ai/v1", "xai"),
        ("https://api.deepseek.com", "deepseek"),
        ("https://api.groq.com/openai/v1", "groq"),
        ("https://api.together.xyz/v1", "together"),
        ("https://api.fireworks.ai/inference/v1", "fireworks"),
        ("https://api.cerebras.ai/v1", "cerebras"),
        ("https://openrouter.ai/api/v1", "openrouter"),
        ("https://api.perplexity.ai", "perplexity"),
        ("http://localhost:11434", "ollama"),
        ("http://ollama:11434/v1", "ollama"),
        ("http://127.0.0.1:1234/v1", "lmstudio"),
        ("http://localhost:8080/v1", "llamacpp"),
        ("api.deepseek.com/v1", "deepseek"),
    ],
)
def test_provider_from_base_url(base_url: str, expected: str) -> None:
    assert infer_provider(base_url=base_url) == expected


@pytest.mark.parametrize(
    "base_url",
    [
        "https://box.ai/v1",
        "https://notmistral.ai.example.com",
        "http://10.0.0.5:8000/v1",
        "::::",
        "",
    ],
)
def test_unknown_or_look_alike_hosts_are_not_guessed(base_url: str) -> None:
    assert infer_provider(base_url=base_url) is None


def test_base_url_wins_over_ls_provider_and_model() -> None:
    # ChatOpenAI pointed at Groq reports ls_provider="openai" but is billed by Groq.
    assert (
        infer_provider(
            ls_provider="openai",
            model="llama-3.3-70b-versatile",
            base_url="https://api.groq.com/openai/v1",
        )
        == "groq"
    )


def test_unknown_base_url_falls_back_to_ls_provider_then_class_then_model() -> None:
    assert infer_provider(ls_provider="mistralai", base_url="http://10.0.0.5:8000") == "mistral"
    assert infer_provider(class_name="ChatBedrockConverse", model="gpt-4o") == "bedrock"
    assert infer_provider(model="claude-haiku-4-5", base_url="http://10.0.0.5:8000") == "anthropic"
    assert infer_provider() is None


@pytest.mark.parametrize(
    ("class_name", "expected"),
    [
        ("ChatOpenAI", "openai"),
        ("AzureChatOpenAI", "azure"),
        ("ChatAnthropic", "anthropic"),
        ("ChatGoogleGenerativeAI", "google"),
        ("ChatVertexAI", "google"),
        ("ChatBedrockConverse", "bedrock"),
        ("ChatMistralAI", "mistral"),
        ("ChatOllama", "ollama"),
        ("ChatGroq", "groq"),
        ("ChatXAI", "xai"),
        ("ChatDeepSeek", "deepseek"),
        ("OpenAI", "openai"),
        ("Anthropic", "anthropic"),
        ("GoogleGenAI", "google"),
        ("BedrockConverse", "bedrock"),
        ("AzureOpenAI", "azure"),
        ("TogetherLLM", "together"),
        ("OpenRouter", "openrouter"),
        ("FakeListChatModel", None),
    ],
)
def test_provider_from_client_class_name(class_name: str, expected: str | None) -> None:
    assert infer_provider(class_name=class_name) == expected
