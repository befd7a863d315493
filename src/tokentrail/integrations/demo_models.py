"""In-process chat models that answer like real providers, for ``tokentrail demo``.

They never touch the network, yet report usage the way the real SDKs do, so the real
integrations capture them unchanged:

* :class:`DemoChatModel` — a LangChain ``BaseChatModel`` whose ``AIMessage`` carries
  ``usage_metadata`` (input, output, cache reads after the first call with the same long
  system prompt) and ``response_metadata`` with the model name, like ``ChatOpenAI``.
* :class:`DemoLLM` — a LlamaIndex ``CustomLLM`` whose responses carry an OpenAI-shaped raw
  payload (``usage.prompt_tokens``, ``completion_tokens``, ``prompt_tokens_details.
  cached_tokens``) and the served model's dated name.
* :class:`DemoEmbedding` — a LlamaIndex embedding model with deterministic vectors.

Token counts come from the offline tokenizer (``tokentrail.estimate``); cache reads follow
OpenAI's rule (a repeated prefix of at least 1,024 tokens, counted in 128-token steps).
This module imports LangChain and LlamaIndex: it is only loaded by the demo.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.llms import (
    CompletionResponse,
    CompletionResponseGen,
    CustomLLM,
    LLMMetadata,
)
from llama_index.core.llms.callbacks import llm_completion_callback
from pydantic import PrivateAttr

from ..estimate import count_message_tokens, count_text_tokens

__all__ = ["DemoChatModel", "DemoEmbedding", "DemoLLM", "answer_for"]

_MIN_CACHE = 1024
_CACHE_STEP = 128

_SENTENCES = (
    "Token usage is captured from the provider's own usage block, so counts match the bill.",
    "Cached prompt tokens are billed at a fraction of the input price.",
    "Each call is stored as one row with its model, user, operation and cost.",
    "A budget guard estimates the worst case before the request leaves the process.",
    "Reasoning tokens are part of the output and are billed as output.",
    "Spend can be grouped by model, user, operation or tag in a single query.",
    "Most of the cost of retrieval-augmented answers is the retrieved context.",
    "Smaller models are usually good enough for classification and routing.",
)


def answer_for(prompt: str, sentences: int = 3) -> str:
    """A deterministic, plausible answer of a few sentences chosen from the prompt's hash."""
    digest = hashlib.sha256(prompt.encode("utf-8")).digest()
    picked = [_SENTENCES[b % len(_SENTENCES)] for b in digest[:sentences]]
    return " ".join(dict.fromkeys(picked))


class _PrefixCache:
    """Which prompt prefixes a model has seen: the provider-side prompt cache, simulated."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def read(self, prefix: str, prefix_tokens: int) -> int:
        """Cached tokens for a prompt starting with ``prefix`` (0 on first sight)."""
        if prefix_tokens < _MIN_CACHE:
            return 0
        key = hashlib.sha256(prefix.encode("utf-8")).hexdigest()
        with self._lock:
            hit = key in self._seen
            self._seen.add(key)
        return (prefix_tokens // _CACHE_STEP) * _CACHE_STEP if hit else 0


def _content(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return " ".join(
        str(part.get("text", "")) if isinstance(part, dict) else str(part) for part in content
    )


class DemoChatModel(BaseChatModel):
    """A LangChain chat model that answers locally and reports OpenAI-like usage."""

    model_name: str = "gpt-4o-mini"
    provider: str = "openai"
    #: Longest answer; the budget guard prices the worst case with it.
    max_tokens: int = 256
    #: Seconds to wait per call, so latencies look like real ones.
    delay: float = 0.02
    _cache: _PrefixCache = PrivateAttr(default_factory=_PrefixCache)

    @property
    def _llm_type(self) -> str:
        return "tokentrail-demo-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "max_tokens": self.max_tokens}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = self.provider
        params["ls_model_name"] = self.model_name
        return params

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        roles = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}
        payload = [{"role": roles.get(m.type, "user"), "content": _content(m)} for m in messages]
        input_tokens = count_message_tokens(payload, model=self.model_name)
        system = "".join(_content(m) for m in messages if m.type == "system")
        cached = self._cache.read(system, count_text_tokens(system, model=self.model_name))
        text = answer_for(_content(messages[-1]) if messages else "")
        output_tokens = count_text_tokens(text, model=self.model_name)
        time.sleep(self.delay)
        message = AIMessage(
            content=text,
            usage_metadata={
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens,
                "input_token_details": {"cache_read": min(cached, input_tokens)},
            },
            response_metadata={"model_name": self.model_name, "finish_reason": "stop"},
        )
        return ChatResult(
            generations=[ChatGeneration(message=message)],
            llm_output={"model_name": self.model_name},
        )


class DemoLLM(CustomLLM):
    """A LlamaIndex LLM that answers locally; its raw payload is an OpenAI chat completion."""

    model_name: str = "gpt-4o-mini"
    #: The dated snapshot the "provider" says served the call.
    served_model: str = "gpt-4o-mini-2024-07-18"
    api_base: str = "https://api.openai.com/v1"
    delay: float = 0.02
    context_window: int = 128_000
    num_output: int = 512
    _cache: _PrefixCache = PrivateAttr(default_factory=_PrefixCache)

    @classmethod
    def class_name(cls) -> str:
        return "DemoLLM"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(
            context_window=self.context_window,
            num_output=self.num_output,
            model_name=self.model_name,
            is_chat_model=False,
        )

    def _raw(self, prompt: str, text: str) -> dict[str, Any]:
        prompt_tokens = count_text_tokens(prompt, model=self.model_name) + 7
        # Retrieval prompts share their instructions and (often) their context: the cache
        # covers the longest prefix before the question.
        head = prompt.rsplit("Query:", 1)[0]
        cached = self._cache.read(head, count_text_tokens(head, model=self.model_name))
        completion = count_text_tokens(text, model=self.model_name)
        return {
            "id": "chatcmpl-demo" + hashlib.sha1(prompt.encode("utf-8")).hexdigest()[:12],
            "object": "chat.completion",
            "model": self.served_model,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion,
                "total_tokens": prompt_tokens + completion,
                "prompt_tokens_details": {"cached_tokens": min(cached, prompt_tokens)},
                "completion_tokens_details": {"reasoning_tokens": 0},
            },
        }

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        text = answer_for(prompt, sentences=4)
        time.sleep(self.delay)
        return CompletionResponse(text=text, raw=self._raw(prompt, text))

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        text = answer_for(prompt, sentences=4)
        raw = self._raw(prompt, text)

        def gen() -> CompletionResponseGen:
            words = text.split(" ")
            so_far = ""
            for i, word in enumerate(words):
                delta = word if i == 0 else " " + word
                so_far += delta
                last = i == len(words) - 1
                yield CompletionResponse(text=so_far, delta=delta, raw=raw if last else None)

        return gen()


class DemoEmbedding(BaseEmbedding):
    """Deterministic 64-dimensional embeddings (a hash of the words), no network."""

    model_name: str = "text-embedding-3-small"
    api_base: str = "https://api.openai.com/v1"

    @classmethod
    def class_name(cls) -> str:
        return "DemoEmbedding"

    @staticmethod
    def _vector(text: str) -> list[float]:
        vec = [0.0] * 64
        for word in text.lower().split():
            h = hashlib.md5(word.encode("utf-8")).digest()
            vec[h[0] % 64] += 1.0
            vec[h[1] % 64] += 0.5
        norm = sum(v * v for v in vec) ** 0.5 or 1.0
        return [v / norm for v in vec]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._vector(text)

    def _get_text_embeddings(self, texts: Sequence[str]) -> list[list[float]]:  # type: ignore[override]
        return [self._vector(t) for t in texts]
