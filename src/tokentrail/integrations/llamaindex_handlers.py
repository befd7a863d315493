"""The LlamaIndex instrumentation handlers: events and spans routed to the recorders.

One event handler and one span handler serve every tracker; they are added to the root
dispatcher of ``llama_index.core.instrumentation`` while any recorder is in use and removed
when the last one goes idle. The dispatcher swallows whatever a handler raises, so these
handlers can record but never stop a call (see ``TokentrailLlamaIndexCallback``).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from types import AsyncGeneratorType, GeneratorType
from typing import Any

from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.embedding import (
    EmbeddingEndEvent,
    EmbeddingStartEvent,
)
from llama_index.core.instrumentation.events.exception import ExceptionEvent
from llama_index.core.instrumentation.events.llm import (
    LLMChatEndEvent,
    LLMChatInProgressEvent,
    LLMChatStartEvent,
    LLMCompletionEndEvent,
    LLMCompletionInProgressEvent,
    LLMCompletionStartEvent,
)
from llama_index.core.instrumentation.span import SimpleSpan
from llama_index.core.instrumentation.span_handlers import BaseSpanHandler
from llama_index_instrumentation import get_dispatcher

from .llamaindex_hub import Hub
from .llamaindex_recorder import Recorder

__all__ = ["HUB", "TokentrailEventHandler", "TokentrailSpanHandler"]

logger = logging.getLogger("tokentrail")


def _chat_start(rec: Recorder, e: Any) -> None:
    rec.start_llm(e.span_id, "chat", e.model_dict, e.messages, None, e.additional_kwargs, e.tags)


def _completion_start(rec: Recorder, e: Any) -> None:
    rec.start_llm(
        e.span_id, "completion", e.model_dict, None, e.prompt, e.additional_kwargs, e.tags
    )


def _progress(rec: Recorder, e: Any) -> None:
    rec.progress(e.span_id, e.response)


def _end(rec: Recorder, e: Any) -> None:
    rec.end(e.span_id, e.response, "events")


def _exception(rec: Recorder, e: Any) -> None:
    rec.fail(e.span_id, e.exception, "events")


def _embedding_start(rec: Recorder, e: Any) -> None:
    rec.start_embedding(e.span_id, e.model_dict, tags=e.tags)


def _embedding_end(rec: Recorder, e: Any) -> None:
    rec.end_embedding(e.span_id, e.chunks, "events")


# Exact event types (a sparse-embedding event subclasses EmbeddingStartEvent and is not
# a billed call we can count). LLMPredict*/StructuredPredict* events wrap a chat or
# completion call that reports itself, so they make no rows of their own.
_DISPATCH: dict[type[BaseEvent], Callable[[Recorder, Any], None]] = {
    LLMChatStartEvent: _chat_start,
    LLMCompletionStartEvent: _completion_start,
    LLMChatInProgressEvent: _progress,
    LLMCompletionInProgressEvent: _progress,
    LLMChatEndEvent: _end,
    LLMCompletionEndEvent: _end,
    ExceptionEvent: _exception,
    EmbeddingStartEvent: _embedding_start,
    EmbeddingEndEvent: _embedding_end,
}


class TokentrailEventHandler(BaseEventHandler):
    """Routes LLM, embedding and exception events to every recorder in use."""

    @classmethod
    def class_name(cls) -> str:
        """Class name."""
        return "TokentrailEventHandler"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        """Hand one event to every recorder (nothing to do for the events tokentrail ignores)."""
        route = _DISPATCH.get(type(event))
        if route is None:
            return
        for rec in HUB.recorders:
            try:
                route(rec, event)
            except Exception:
                logger.exception("tokentrail: could not handle LlamaIndex %s", type(event).__name__)


class TokentrailSpanHandler(BaseSpanHandler[SimpleSpan]):
    """Keeps the parent of every open span, and tells recorders when spans end."""

    @classmethod
    def class_name(cls) -> str:
        """Class name."""
        return "TokentrailSpanHandler"

    def span_enter(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        parent_id: str | None = None,
        tags: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Remember the span's parent and instance."""
        HUB.spans[id_] = (parent_id, instance)

    def span_exit(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        result: Any | None = None,
        **kwargs: Any,
    ) -> None:
        """Forget the span; a returned stream is handed to the recorders."""
        HUB.spans.pop(id_, None)
        # Exact type tests: generator types cannot be subclassed (inspect.isgenerator and
        # inspect.isasyncgen say the same, at two Python calls per span).
        cls: type = type(result)
        if cls is not GeneratorType and cls is not AsyncGeneratorType:
            return
        for rec in HUB.recorders:
            try:
                rec.span_exit(id_, result)
            except Exception:
                logger.exception("tokentrail: could not watch a LlamaIndex stream")

    def span_drop(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        err: BaseException | None = None,
        **kwargs: Any,
    ) -> None:
        """Forget the span; calls running in it failed."""
        HUB.spans.pop(id_, None)
        for rec in HUB.recorders:
            try:
                rec.span_drop(id_, err)
            except Exception:
                logger.exception("tokentrail: could not record a failed LlamaIndex call")

    def new_span(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        parent_span_id: str | None = None,
        tags: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> SimpleSpan | None:
        """Unused: span_enter is overridden to keep no span objects."""
        return None

    def prepare_to_exit_span(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        result: Any | None = None,
        **kwargs: Any,
    ) -> SimpleSpan | None:
        """Unused."""
        return None

    def prepare_to_drop_span(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        err: BaseException | None = None,
        **kwargs: Any,
    ) -> SimpleSpan | None:
        """Unused."""
        return None


_EVENT_HANDLER = TokentrailEventHandler()
_SPAN_HANDLER = TokentrailSpanHandler()


def _install() -> None:
    root = get_dispatcher()
    if not any(h is _EVENT_HANDLER for h in root.event_handlers):
        root.add_event_handler(_EVENT_HANDLER)
    if not any(h is _SPAN_HANDLER for h in root.span_handlers):
        root.add_span_handler(_SPAN_HANDLER)


def _uninstall() -> None:
    root = get_dispatcher()
    # New lists, swapped in one assignment: a dispatch in another thread keeps its old list.
    root.event_handlers = [h for h in root.event_handlers if h is not _EVENT_HANDLER]
    root.span_handlers = [h for h in root.span_handlers if h is not _SPAN_HANDLER]


#: The process-wide hub every tracker's LlamaIndex integration goes through.
HUB: Hub[Recorder] = Hub(Recorder, _install, _uninstall)
