"""``tracker.track()`` blocks: a handler attached to every LangChain call inside them.

LangChain's inheritable configure hook adds the handler a context variable holds to every
callback manager configured in that context, so no ``callbacks=`` are needed in a block.
"""

from __future__ import annotations

import weakref
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING

from langchain_core.tracers.context import register_configure_hook

from ...context import Run
from .calls import registries_lock
from .handler import TokentrailCallbackHandler

if TYPE_CHECKING:
    from ...protocols import CaptureTarget

__all__ = ["enter_track", "exit_track"]

_Var = ContextVar[TokentrailCallbackHandler | None]
_track_vars: weakref.WeakKeyDictionary[CaptureTarget, _Var] = weakref.WeakKeyDictionary()


def _track_var(tracker: CaptureTarget) -> _Var:
    with registries_lock:
        var = _track_vars.get(tracker)
        if var is None:
            # One inheritable configure hook per tracker.
            var = ContextVar(f"tokentrail_langchain_{id(tracker):x}", default=None)
            register_configure_hook(var, True)
            _track_vars[tracker] = var
        return var


def enter_track(tracker: CaptureTarget, run: Run) -> Token[TokentrailCallbackHandler | None]:
    """Attach a handler for ``tracker`` to every LangChain call in the current context.

    Called by ``Tracker.track()``. Nested blocks of the same tracker reuse the outer
    block's handler (the attribution and the runs to credit come from the tracker's run
    stack when each call starts), so a call is recorded once whatever the nesting.
    """
    var = _track_var(tracker)
    handler = var.get()
    if handler is None:
        handler = TokentrailCallbackHandler(tracker)
    return var.set(handler)


def exit_track(
    tracker: CaptureTarget, run: Run, token: Token[TokentrailCallbackHandler | None]
) -> None:
    """Undo :func:`enter_track` (the outer block's handler, if any, is active again)."""
    var = _track_var(tracker)
    try:
        var.reset(token)
    except ValueError:
        # Exited in another context (a generator finalized elsewhere): clear it here.
        var.set(None)
