"""The LlamaIndex calls of one tracker, from their start events to one record each.

LlamaIndex reports a model call as a start event, in-progress events while it streams, then
an end event or an exception, all carrying the id of the span the call runs in. A
:class:`Recorder` (one per tracker) keeps each call by span id from start to finish and
hands it to the tracker as exactly one record (:func:`.llamaindex_record.record_of`):

* the attribution and active ``track()`` runs are taken at the start event, which runs in
  the caller's context; the budget reservation is taken there too;
* a call started inside another call (``chat()`` falling back to ``complete()``, or
  Anthropic's ``complete()`` calling ``chat()``) is the *nested* call: it is the one that
  reaches the provider, so it records and the outer call does not;
* a stream ends with its end event, or is ``cancelled`` when the consumer drops it (the
  generator's close raises ``GeneratorExit``; a generator never started is seen through a
  weak reference taken when its span returns it).

Nothing in this module imports LlamaIndex.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
import weakref
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from ..context import Attribution, CallContext, active_runs
from ..errors import BudgetExceededError
from ..protocols import CaptureTarget
from ..records import Status
from .llamaindex_calls import Call, Kind, Source, tag_attribution
from .llamaindex_estimate import message_dict
from .llamaindex_hub import Hub
from .llamaindex_identify import identify, max_tokens
from .llamaindex_record import record_of
from .llamaindex_usage import has_usage

__all__ = ["Recorder"]

logger = logging.getLogger("tokentrail")

# Depth limit of the walk up the span tree (LlamaIndex nests a few levels per component).
_MAX_DEPTH = 64
_CANCELLED = (GeneratorExit, asyncio.CancelledError, KeyboardInterrupt)


def _status_of(exc: BaseException | None) -> Status:
    return "cancelled" if isinstance(exc, _CANCELLED) else "error"


class Recorder:
    """The LlamaIndex calls of one tracker: started, streamed and finished into records."""

    def __init__(self, tracker: CaptureTarget, hub: Hub[Recorder]) -> None:
        self.tracker = tracker
        self.hub = hub
        #: Attached instrumentation handles, most recent last (its attribution applies).
        self.handles: list[Any] = []
        self.track_depth = 0
        self.callbacks = 0
        self.calls: dict[str, Call] = {}
        self.embeds: dict[str, list[Call]] = {}
        self.by_event: dict[str, Call] = {}
        self._warned_unstoppable = False

    # ------------------------------------------------------------------ state
    @property
    def in_use(self) -> bool:
        """True while a handle, a ``track()`` block or a callback handler uses it."""
        return bool(self.handles or self.track_depth or self.callbacks)

    @property
    def busy(self) -> bool:
        """True while calls are in flight."""
        return bool(self.calls or self.embeds)

    def _start_context(
        self, source: Source, tags: Mapping[str, Any] | None, attribution: Attribution | None
    ) -> CallContext | None:
        """The context of a call starting now; ``None``: an event call that is not ours."""
        if source == "events":
            return self._events_context(tags)
        explicit = tag_attribution(tags)
        if attribution is not None:
            explicit = explicit.over(attribution) if explicit else attribution
        return self.tracker.call_context(explicit)

    def _events_context(self, tags: Mapping[str, Any] | None) -> CallContext | None:
        """The context of a call seen through instrumentation events; ``None``: not ours.

        With an attached handle every call is ours; without one, only calls inside an
        active ``track()`` block of this tracker are.
        """
        explicit = tag_attribution(tags)
        if self.handles:
            handle = self.handles[-1]
            if explicit is None and not active_runs():
                return self._handle_context(handle)
            base: Attribution = handle.attribution
            return self.tracker.call_context(explicit.over(base) if explicit else base)
        if self.track_depth:
            ctx = self.tracker.call_context(explicit)
            return ctx if ctx.runs else None
        return None

    def _handle_context(self, handle: Any) -> CallContext:
        """A handle's context for calls with nothing of their own, kept per tracker defaults."""
        defaults = self.tracker.defaults
        cached: tuple[Attribution, CallContext] | None = handle.context_cache
        if cached is None or cached[0] is not defaults:
            cached = (defaults, self.tracker.call_context(handle.attribution))
            handle.context_cache = cached
        return cached[1]

    def _place(self, span: str) -> tuple[Call | None, str | None, str, Any]:
        """(innermost call in flight above ``span``, parent span id, root span id, instance).

        One walk up the span tree serves both the nesting check and the run lineage; the
        instance is the object whose method the span wraps (the LLM).
        """
        spans = self.hub.spans
        entry = spans.get(span)
        if entry is None:
            return None, None, span, None
        parent, instance = entry
        if parent is None:
            return None, None, span, instance  # a call at the root: its own trace
        ancestor = self.calls.get(parent)
        root = parent
        for _ in range(_MAX_DEPTH):
            up = spans.get(root)
            if up is None or up[0] is None:
                break
            root = up[0]
            if ancestor is None:
                ancestor = self.calls.get(root)
        return ancestor, parent, root, instance

    # ------------------------------------------------------------------ LLM calls
    def start_llm(
        self,
        span: str | None,
        kind: Kind,
        model_dict: Mapping[str, Any] | None,
        messages: Sequence[Any] | None = None,
        prompt: str | None = None,
        kwargs: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        *,
        source: Source = "events",
        attribution: Attribution | None = None,
    ) -> Call | None:
        """A chat or completion call starts (in the caller's context).

        With ``source="callback"`` a budget refusal raises ``BudgetExceededError``;
        instrumentation events cannot stop a call, so the refusal is kept on the call.
        """
        if span is None:
            return None
        existing = self.calls.get(span)
        if existing is not None:
            return existing
        parent, run_parent, trace, instance = self._place(span)
        ctx = parent.ctx if parent is not None else self._start_context(source, tags, attribution)
        if ctx is None:
            return None
        if kind == "completion":  # complete(): reserved and stored as a text completion
            ctx = ctx.with_default_operation("text_completion")
        model_dict = model_dict or {}
        model, provider = identify(instance, model_dict)
        tools = kwargs.get("tools") if kwargs else None
        call = Call(
            span,
            kind,
            source,
            ctx,
            model,
            provider,
            ts=datetime.now(timezone.utc),
            t0=time.perf_counter(),
            parent_run_id=run_parent,
            trace_id=trace,
            messages=messages,
            prompt=prompt,
            tools=tools if isinstance(tools, (list, tuple)) and tools else None,
            parent=parent,
        )
        if parent is not None:
            parent.children += 1
        elif self.tracker.guarded:
            bound = max_tokens(model_dict, kwargs, instance)
            self._preflight(call, bound, raise_refusal=source == "callback")
        self.calls[span] = call
        return call

    def _preflight(self, call: Call, bound: int | None, *, raise_refusal: bool) -> None:
        """Reserve the call's worst case; a refusal raises or is kept on the call."""
        try:
            from ..budget import PreflightRequest

            messages = call.messages
            call.reservation = self.tracker.preflight(
                PreflightRequest(
                    model=call.model,
                    provider=call.provider,
                    messages=None if messages is None else [message_dict(m) for m in messages],
                    prompt=call.prompt,
                    max_tokens=bound,
                    tools=call.tools,
                    context=call.ctx,
                    run_id=call.run_id,
                )
            )
        except BudgetExceededError as err:
            if raise_refusal:
                raise
            call.refusal = err
        except Exception:
            logger.exception("tokentrail: budget pre-flight failed for a LlamaIndex call")

    def link_callback(self, span: str | None, event_id: str) -> Call | None:
        """A legacy callback handler sees a call the instrumentation already started.

        Raises the budget refusal taken at start (the callback's start event propagates
        exceptions, so this is what stops the call before its request is sent).
        """
        call = self.calls.get(span) if span is not None else None
        if call is None or call.source != "events" or call.linked:
            return None
        call.linked = True
        if call.refusal is not None:
            self.calls.pop(call.span, None)
            self.hub.settle_idle(self)
            raise call.refusal
        self.by_event[event_id] = call
        call.event_id = event_id
        return call

    def progress(self, span: str | None, response: Any) -> None:
        """A streamed chunk arrived (its ``delta`` goes to a live counter, if one watches)."""
        call = self.calls.get(span) if span is not None else None
        if call is None:
            return
        call.streamed = True
        call.last = response
        if has_usage(getattr(response, "raw", None)):
            call.usage_response = response
        # A live counter follows the stream; an outer call whose nested call reaches the
        # provider records nothing, so only the nested call's pieces are reported.
        if not call.children and self.tracker.watching_streams:
            delta = getattr(response, "delta", None)
            if isinstance(delta, str) and delta:
                self.tracker.streamed(call.run_id, delta, call.model)

    def end(self, span: str | None, response: Any, source: Source) -> None:
        """The call returned (or its stream was consumed to the end)."""
        call = self.calls.get(span) if span is not None else None
        if call is None or call.source != source:
            return
        self.calls.pop(call.span, None)
        self._finish(call, response, "ok", None)

    def end_event(self, event_id: str, response: Any, exc: BaseException | None) -> None:
        """The legacy callback's end event for a call it started itself."""
        call = self.by_event.pop(event_id, None)
        if call is None or call.source != "callback":
            return
        if call.kind == "embedding":
            self._pop_embed(call)
        elif self.calls.get(call.span) is call:
            self.calls.pop(call.span, None)
        if exc is not None:
            self._finish(call, None, _status_of(exc), exc)
        elif call.kind == "embedding":
            self._finish(call, None, "ok", None, response if isinstance(response, Sequence) else ())
        else:
            self._finish(call, response, "ok", None)

    def fail(self, span: str | None, exc: BaseException | None, source: Source) -> None:
        """The call raised, or its stream was closed early (``GeneratorExit``)."""
        call = self.calls.get(span) if span is not None else None
        if call is None or call.source != source:
            return
        self.calls.pop(call.span, None)
        self._finish(call, None, _status_of(exc), exc)

    def span_exit(self, span: str, result: Any) -> None:
        """A span returned: a stream's generator is watched until it is consumed or dropped."""
        call = self.calls.get(span)
        if call is None or call.done:
            return
        if inspect.isgenerator(result) or inspect.isasyncgen(result):
            call.streamed = True
            # Not weak-referenceable: the generator's close() event still reports it.
            with contextlib.suppress(TypeError):
                weakref.finalize(result, self._collected, call)

    def span_drop(self, span: str, err: BaseException | None) -> None:
        """A span raised: the calls running in it failed."""
        call = self.calls.get(span)
        if call is not None and call.source == "events":
            self.calls.pop(span, None)
            if isinstance(err, BudgetExceededError) and call.last is None:
                # Refused before its request was sent (by another guard): nothing was spent.
                self._release(call)
            else:
                self._finish(call, None, _status_of(err), err)
        for item in [c for c in self.embeds.get(span, ()) if c.source == "events"]:
            self._pop_embed(item)
            self._finish(item, None, _status_of(err), err)

    def _collected(self, call: Call) -> None:
        """A stream's generator was garbage-collected: consumed, closed, or never started."""
        if call.done:
            return
        try:
            if self.calls.get(call.span) is call:
                self.calls.pop(call.span, None)
            # Collected before the generator's close() reports GeneratorExit (weak
            # references are cleared first), or never started: the consumer dropped it.
            self._finish(call, None, "cancelled", GeneratorExit())
        except Exception:  # runs inside the garbage collector: never raise
            logger.exception("tokentrail: could not record an abandoned LlamaIndex stream")

    # ------------------------------------------------------------------ embeddings
    def start_embedding(
        self,
        span: str | None,
        model_dict: Mapping[str, Any] | None,
        *,
        tags: Mapping[str, Any] | None = None,
        source: Source = "events",
        attribution: Attribution | None = None,
    ) -> Call | None:
        """An embedding call starts (one batch: one provider request)."""
        if span is None:
            return None
        ctx = self._start_context(source, tags, attribution)
        if ctx is None:
            return None
        _parent, run_parent, trace, instance = self._place(span)
        model, provider = identify(instance, model_dict or {})
        call = Call(
            span,
            "embedding",
            source,
            ctx,
            model,
            provider,
            ts=datetime.now(timezone.utc),
            t0=time.perf_counter(),
            parent_run_id=run_parent,
            trace_id=trace,
        )
        self.embeds.setdefault(span, []).append(call)
        return call

    def link_embedding(self, span: str | None, event_id: str) -> Call | None:
        """A legacy callback sees an embedding the instrumentation already started."""
        for call in self.embeds.get(span, ()) if span is not None else ():
            if call.source == "events" and not call.linked:
                call.linked = True
                return call
        return None

    def end_embedding(self, span: str | None, chunks: Sequence[str], source: Source) -> None:
        """An embedding batch returned."""
        for call in self.embeds.get(span, ()) if span is not None else ():
            if call.source == source and not call.done:
                self._pop_embed(call)
                self._finish(call, None, "ok", None, chunks)
                return

    def _pop_embed(self, call: Call) -> None:
        pending = self.embeds.get(call.span)
        if pending is None or call not in pending:
            return
        pending.remove(call)
        if not pending:
            self.embeds.pop(call.span, None)

    # ------------------------------------------------------------------ finishing
    def _release(self, call: Call) -> None:
        call.done = True
        self.tracker.release(call.reservation)
        self.hub.settle_idle(self)

    def _finish(
        self,
        call: Call,
        response: Any,
        status: Status,
        exc: BaseException | None,
        chunks: Sequence[str] = (),
    ) -> None:
        if call.done:
            return
        call.done = True
        if call.event_id is not None:
            self.by_event.pop(call.event_id, None)
        try:
            if call.children:
                return  # its nested calls reached the provider and recorded: one row per call
            record = record_of(call, response, status, exc, chunks)
            reservation = call.reservation
            parent = call.parent
            if parent is not None:
                reservation, parent.reservation = parent.reservation, None
            if call.refusal is not None or (parent is not None and parent.refusal is not None):
                self._warn_unstoppable()
            self.tracker.capture(record, context=call.ctx, reservation=reservation)
        except Exception:  # capturing must never break the app
            logger.exception("tokentrail: could not record a LlamaIndex call")
        finally:
            self.hub.settle_idle(self)

    def _warn_unstoppable(self) -> None:
        if self._warned_unstoppable:
            return
        self._warned_unstoppable = True
        logger.warning(
            "tokentrail: a LlamaIndex call went over budget but could not be stopped: "
            "this LLM was made before the budget guard was in Settings.callback_manager. "
            "Guard it with handle.guard(llm) (handle = tracker.llamaindex(...)), or set the "
            "budget before calling tracker.llamaindex() and create the LLM afterwards."
        )
