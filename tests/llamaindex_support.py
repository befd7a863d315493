"""Helpers shared by the LlamaIndex test modules."""

from __future__ import annotations

from llama_index_instrumentation import get_dispatcher

from tokentrail.integrations.llamaindex_handlers import _EVENT_HANDLER, _SPAN_HANDLER


def installed() -> bool:
    """True while tokentrail's handlers are on LlamaIndex's root dispatcher."""
    root = get_dispatcher()
    return any(h is _EVENT_HANDLER for h in root.event_handlers) or any(
        h is _SPAN_HANDLER for h in root.span_handlers
    )
