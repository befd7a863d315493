"""``tracker.track()`` blocks: make a run active, and let the framework integrations join.

A block pushes its :class:`~tokentrail.context.Run` on the context's run stack (every
call starting inside it is attributed to it and counted), and each integration whose
framework is already imported attaches itself for the block's duration (the LangChain
integration, for instance, adds a handler to every callback manager configured inside).
Integrations are found by module name, so this module imports none of them.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import sys
from collections.abc import Iterator
from typing import Any

from .context import _RUNS, Run

__all__ = ["run_block"]

logger = logging.getLogger("tokentrail")

# (framework module, integration module): blocks hook into frameworks already imported.
_TRACK_INTEGRATIONS: tuple[tuple[str, str], ...] = (
    ("langchain_core", "tokentrail.integrations.langchain"),
    ("llama_index.core", "tokentrail.integrations.llamaindex"),
)
_installed: dict[str, bool] = {}


@contextlib.contextmanager
def run_block(tracker: object, run: Run) -> Iterator[Run]:
    """Make ``run`` active in the current context for the ``with`` body.

    Each integration's ``enter_track(tracker, run)`` is called on entry and its
    ``exit_track(tracker, run, token)`` on exit; one that fails is logged and skipped.
    """
    token = _RUNS.set((*_RUNS.get(), run))
    hooks: list[tuple[Any, Any]] = []
    try:
        for module in _integrations():
            try:
                hooks.append((module, module.enter_track(tracker, run)))
            except Exception:
                logger.exception("tokentrail: %s could not join a track() block", module)
        yield run
    finally:
        for module, hook_token in reversed(hooks):
            try:
                module.exit_track(tracker, run, hook_token)
            except Exception:
                logger.exception("tokentrail: %s could not leave a track() block", module)
        try:
            _RUNS.reset(token)
        except ValueError:
            # Exited in another context (a generator stepped in copied contexts, as
            # servers do): drop this run from the stack visible here instead.
            _RUNS.set(tuple(r for r in _RUNS.get() if r is not run))
        run.close()


def _integrations() -> Iterator[Any]:
    """Integration modules whose framework is installed and already imported."""
    for framework, integration in _TRACK_INTEGRATIONS:
        if framework not in sys.modules:
            continue
        available = _installed.get(integration)
        if available is None:
            available = importlib.util.find_spec(framework) is not None
            _installed[integration] = available
        if available:
            yield importlib.import_module(integration)
