"""Keep LangChain from logging a budget refusal as an error.

LangChain logs every exception a callback handler raises ("Error in
TokentrailCallbackHandler.on_chat_model_start callback: BudgetExceededError(...)") before
re-raising it. A refusal is the guard working as asked, and the caller gets the exception
itself, so that one log line is dropped; every other handler error is still logged.
"""

from __future__ import annotations

import logging

__all__ = ["install"]

_LANGCHAIN_CALLBACKS = "langchain_core.callbacks.manager"
_HANDLER = "TokentrailCallbackHandler"


class _NoRefusalLines(logging.Filter):
    """Drops LangChain's "Error in <handler> callback" line for our budget refusals only."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not isinstance(args, tuple) or len(args) != 3 or args[0] != _HANDLER:
            return True
        return not str(args[2]).startswith("BudgetExceededError(")


_FILTER = _NoRefusalLines()


def install() -> None:
    """Add the filter to LangChain's callback-manager logger (once; idempotent)."""
    logger = logging.getLogger(_LANGCHAIN_CALLBACKS)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
