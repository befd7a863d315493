"""Helpers shared by the LlamaIndex test modules."""

from __future__ import annotations

from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index_instrumentation import get_dispatcher

from tokentrail.integrations.llamaindex_handlers import _EVENT_HANDLER, _SPAN_HANDLER


def installed() -> bool:
    """True while tokentrail's handlers are on LlamaIndex's root dispatcher."""
    root = get_dispatcher()
    return any(h is _EVENT_HANDLER for h in root.event_handlers) or any(
        h is _SPAN_HANDLER for h in root.span_handlers
    )


class SDKOpenAIEmbedding(BaseEmbedding):
    """OpenAI embeddings through the real ``openai`` SDK, as ``llama-index-embeddings-openai``.

    That package is not a dependency; like it, this one sends each batch as one
    ``client.embeddings.create`` request and hands LlamaIndex the vectors only.
    """

    client: Any = None
    api_base: str | None = None

    @classmethod
    def class_name(cls) -> str:
        return "OpenAIEmbedding"

    def _embed(self, texts: list[str]) -> list[list[float]]:
        response = self.client.embeddings.create(
            model=self.model_name, input=texts, encoding_format="float"
        )
        return [item.embedding for item in response.data]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embed([query])[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._embed([query])[0]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embed([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embed(texts)
