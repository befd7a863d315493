"""LangChain integration: one callback handler that records every model call it sees.

``tracker.langchain(...)`` returns a :class:`TokentrailCallbackHandler`; ``tracker.track()``
blocks attach one automatically to every LangChain call made inside them (through
LangChain's inheritable configure hook), so no ``callbacks=`` are needed there.

How one model call becomes one row (each step in its own module):

* ``starts``: the start event's model, provider, attribution and user metadata, and the
  budget pre-flight request (``messages`` turns LangChain messages into plain dicts).
* ``calls``: the call is kept by ``run_id`` until its end event, in a table shared by
  every handler of the tracker (a call seen by two handlers is recorded once).
* ``results``: the end event's usage, returned model, cache hit and estimate, as the one
  ``UsageRecord`` handed to the tracker's ``capture``.
* ``handler``: the LangChain callbacks that drive the steps above.
* ``track``: ``tracker.track()`` blocks attach a handler to every call inside them.

Only the tracker's public capture surface is used (``tokentrail.protocols.CaptureTarget``).
"""

from __future__ import annotations

from .handler import TokentrailCallbackHandler
from .track import enter_track, exit_track

__all__ = ["TokentrailCallbackHandler", "enter_track", "exit_track"]
