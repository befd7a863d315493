"""The calls in flight of one tracker's LlamaIndex integration, and the hub that feeds them.

LlamaIndex reports a model call as a start event, in-progress events while it streams, then
an end event or an exception, all carrying the id of the span the call runs in. A
:class:`Recorder` (one per tracker) keeps each call by span id from start to finish and
turns it into exactly one :class:`~tokentrail.records.UsageRecord`:

* the attribution and active ``track()`` runs are taken at the start event, which runs in
  the caller's context; the budget reservation is taken there too;
* a call started inside another call (``chat()`` falling back to ``complete()``, or
  Anthropic's ``complete()`` calling ``chat()``) is the *nested* call: it is the one that
  reaches the provider, so it records and the outer call does not;
* a stream ends with its end event, or is ``cancelled`` when the consumer drops it (the
  generator's close raises ``GeneratorExit``; a generator never started is seen through a
  weak reference taken when its span returns it).

The :class:`Hub` is process-wide: it owns the span tree (parent of every open span) and the
set of recorders in use, and installs the LlamaIndex handlers only while one is in use.
Nothing in this module imports LlamaIndex.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from ..context import Attribution, CallContext, active_runs
from ..errors import BudgetExceededError
from ..providers import infer_provider
from ..records import Status, UsageRecord
from ..usage import MAX_TOKENS, Usage, trusted_usage
from . import llamaindex_usage as lu
from .llamaindex_usage import _OPENAI_SEMANTICS, _SDK_USAGE, _VARIANTS, _is_sdk_usage

if TYPE_CHECKING:
    from ..tracker import Tracker

__all__ = ["Call", "Hub", "Recorder", "tag_attribution"]

logger = logging.getLogger("tokentrail")

Kind = Literal["chat", "completion", "embedding"]
Source = Literal["events", "callback"]

# Depth limit of the walk up the span tree (LlamaIndex nests a few levels per component).
_MAX_DEPTH = 64
_CANCELLED = (GeneratorExit, asyncio.CancelledError, KeyboardInterrupt)
#: The ``tools`` argument types read (a call's tools count towards its prompt estimate).
_SEQUENCES = (list, tuple)
# Bound once: these run on every call (a module global is one lookup, ``time.x`` two).
_clock = time.perf_counter
_now = datetime.now
_UTC = timezone.utc
_FIELD_TAGS = ("user_id", "session_id", "operation")


def tag_attribution(tags: Mapping[str, Any] | None) -> Attribution | None:
    """Attribution from LlamaIndex ``instrument_tags``.

    ``user_id``, ``session_id`` and ``operation`` set those fields, ``tags`` (a string or a
    list) adds tags, and every other key goes to the record's metadata.
    """
    if not tags:
        return None
    raw_tags = tags.get("tags")
    if isinstance(raw_tags, str):
        tag_list: Sequence[str] = (raw_tags,)
    elif isinstance(raw_tags, (list, tuple, set, frozenset)):
        tag_list = [str(t) for t in raw_tags]
    else:
        tag_list = ()
    metadata = {k: v for k, v in tags.items() if k not in _FIELD_TAGS and k != "tags"}
    return Attribution.of(
        tags.get("user_id"), tags.get("session_id"), tags.get("operation"), tag_list, metadata
    )


class Call:
    """One model or embedding call between its start and its end.

    A plain slotted class with a positional constructor: one is built per call, and a
    dataclass's keyword matching and default factories cost more than the call's
    bookkeeping itself.
    """

    __slots__ = (
        "children",
        "ctx",
        "done",
        "event_id",
        "kind",
        "last",
        "linked",
        "messages",
        "model",
        "parent",
        "parent_run_id",
        "prompt",
        "provider",
        "refusal",
        "reservation",
        "run_id",
        "source",
        "span",
        "streamed",
        "t0",
        "tools",
        "trace_id",
        "ts",
        "usage_response",
    )

    def __init__(
        self,
        span: str,
        kind: Kind,
        source: Source,
        ctx: CallContext,
        model: str | None,
        provider: str | None,
        ts: datetime,
        t0: float,
        parent_run_id: str | None = None,
        trace_id: str | None = None,
        messages: Sequence[Any] | None = None,
        prompt: str | None = None,
        tools: Sequence[Any] | None = None,
        parent: Call | None = None,
    ) -> None:
        self.span = span
        self.kind = kind
        self.source = source
        self.ctx = ctx
        self.model = model
        self.provider = provider
        self.ts = ts
        self.t0 = t0
        #: The span id is the row's run id.
        self.run_id: str | None = span
        self.parent_run_id = parent_run_id
        self.trace_id = trace_id
        self.messages = messages
        self.prompt = prompt
        self.tools = tools
        #: The outer call this one runs inside (its provider call is this one).
        self.parent = parent
        #: Nested calls started inside this one; when > 0 this call records nothing itself.
        self.children = 0
        self.reservation: Any = None
        #: The budget refusal taken at start, raised by the callback handler when one is present.
        self.refusal: BudgetExceededError | None = None
        #: The last streamed response, and the last one whose raw payload carried usage.
        self.last: Any = None
        self.usage_response: Any = None
        self.streamed = False
        #: A legacy callback handler saw this call too (it only guards it then).
        self.linked = False
        #: The legacy callback's event id, when a callback handler started this call.
        self.event_id: str | None = None
        self.done = False

    def __repr__(self) -> str:
        return f"<Call {self.kind} {self.span} source={self.source} done={self.done}>"


class Recorder:
    """The LlamaIndex calls of one tracker: started, streamed and finished into records."""

    def __init__(self, tracker: Tracker, hub: Hub) -> None:
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
        self,
        source: Source,
        tags: Mapping[str, Any] | None,
        attribution: Attribution | None,
    ) -> CallContext | None:
        """The context of a call starting now; None: an event call that is not ours."""
        if source == "events":
            return self._events_context(tags)
        explicit = tag_attribution(tags)
        if attribution is not None:
            explicit = explicit.over(attribution) if explicit else attribution
        return self.tracker.call_context(explicit)

    def _events_context(self, tags: Mapping[str, Any] | None) -> CallContext | None:
        """The context of a call seen through instrumentation events; None: not ours."""
        explicit = tag_attribution(tags) if tags else None
        handles = self.handles
        if handles:
            handle = handles[-1]
            base: Attribution = handle.attribution
            if explicit is None and not active_runs():
                # The common case: nothing call-specific, so the context is the handle's.
                defaults = self.tracker.defaults
                cached: tuple[Attribution, CallContext] | None = handle.context_cache
                if cached is None or cached[0] is not defaults:
                    cached = (defaults, self.tracker.call_context(base))
                    handle.context_cache = cached
                return cached[1]
            return self.tracker.call_context(explicit.over(base) if explicit else base)
        if self.track_depth:
            ctx = self.tracker.call_context(explicit)
            return ctx if ctx.runs else None
        return None

    def _place(self, span: str) -> tuple[Call | None, str | None, str, Any]:
        """(innermost call in flight above ``span``, parent span id, root span id, instance).

        One walk up the span tree serves both the nesting check and the run lineage;
        the instance is the object whose method the span wraps (the LLM).
        """
        spans = self.hub.spans
        entry = spans.get(span)
        if entry is None:
            return None, None, span, None
        parent, instance = entry
        if parent is None:
            return None, None, span, instance
        calls = self.calls
        ancestor = calls.get(parent) if calls else None
        root = parent
        depth = 0
        while depth < _MAX_DEPTH:
            up = spans.get(root)
            if up is None or up[0] is None:
                break
            root = up[0]
            if ancestor is None and calls:
                ancestor = calls.get(root)
            depth += 1
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
        entry = self.hub.spans.get(span)
        if entry is not None and entry[0] is None:
            # A span at the root (a direct llm.chat()): what _place says, without the walk.
            parent = run_parent = None
            trace = span
            instance = entry[1]
        else:
            parent, run_parent, trace, instance = self._place(span)
        found: CallContext | None
        if parent is not None:
            found = parent.ctx
        elif source != "events":
            found = self._start_context(source, tags, attribution)
        else:
            # _events_context's usual case inline (an attached handle, no instrument tags,
            # no track() block): the handle's context, cached per tracker defaults.
            handles = self.handles
            cached: tuple[Attribution, CallContext] | None = (
                handles[-1].context_cache if handles and not tags and not active_runs() else None
            )
            if cached is not None and cached[0] is self.tracker.defaults:
                found = cached[1]
            else:
                found = self._events_context(tags)
        if found is None:
            return None
        model_dict = model_dict or {}
        model, provider = _identify(instance, model_dict)
        tools = kwargs.get("tools") if kwargs else None
        call = Call(
            span,
            kind,
            source,
            found,
            model,
            provider,
            _now(_UTC),
            _clock(),
            run_parent,
            trace,
            messages,
            prompt,
            tools if isinstance(tools, _SEQUENCES) and tools else None,
            parent,
        )
        if parent is not None:
            parent.children += 1
        elif self.tracker._guard is not None:
            self._preflight(call, model_dict, kwargs, instance, raise_refusal=source == "callback")
        self.calls[span] = call
        return call

    def _preflight(
        self,
        call: Call,
        model_dict: Mapping[str, Any],
        kwargs: Mapping[str, Any] | None,
        instance: Any,
        *,
        raise_refusal: bool,
    ) -> None:
        try:
            from ..budget import PreflightRequest

            request = PreflightRequest(
                model=call.model,
                provider=call.provider,
                messages=[lu.message_dict(m) for m in call.messages]
                if call.messages is not None
                else None,
                prompt=call.prompt,
                max_tokens=_max_tokens(model_dict, kwargs, instance),
                tools=call.tools,
                context=call.ctx,
                run_id=call.run_id,
            )
            call.reservation = self.tracker.preflight(request)
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
        if span is None:
            return None
        call = self.calls.get(span)
        if call is None or call.source != "events" or call.linked:
            return None
        call.linked = True
        if call.refusal is not None:
            self.calls.pop(span, None)
            self.hub.settle_idle(self)
            raise call.refusal
        self.by_event[event_id] = call
        call.event_id = event_id
        return call

    def progress(self, span: str | None, response: Any) -> None:
        """A streamed chunk arrived."""
        call = self.calls.get(span) if span is not None else None
        if call is None:
            return
        call.streamed = True
        call.last = response
        raw = getattr(response, "raw", None)
        if raw is not None and lu.has_usage(raw):
            call.usage_response = response

    def end(self, span: str | None, response: Any, source: Source) -> None:
        """The call returned (or its stream was consumed to the end)."""
        call = self.calls.get(span) if span is not None else None
        if call is None or call.source != source:
            return
        self.calls.pop(call.span, None)
        # The usual call: not streamed, not nested, nothing linked or refused (what
        # _finish checks for those is then a no-op), and a response _plain_result reads.
        if (
            not call.streamed
            and call.parent is None
            and not call.children
            and call.event_id is None
            and call.refusal is None
            and not call.done
        ):
            plain = _plain_result(call, response)
            if plain is not None:
                call.done = True
                try:
                    # Stored in one step when nothing else needs its record (see
                    # Tracker.capture_plain), else captured as a record.
                    usage, model, request_id, variant, latency_ms = plain
                    if variant is not None or not self.tracker.capture_plain(
                        "llamaindex",
                        model,
                        call.provider,
                        usage,
                        call.ts,
                        latency_ms,
                        call.ctx,
                        call.run_id,
                        call.parent_run_id,
                        call.trace_id,
                        _NO_METADATA,
                        False,
                        request_id,
                    ):
                        self.tracker.capture(
                            _plain_record_of(call, plain),
                            context=call.ctx,
                            reservation=call.reservation,
                        )
                except Exception:  # capturing must never break the app
                    logger.exception("tokentrail: could not record a LlamaIndex call")
                if not self.handles:  # an attached handle keeps the recorder in use
                    self.hub.settle_idle(self)
                return
        self._finish(call, response, "ok", None)

    def end_event(self, event_id: str, response: Any, exc: BaseException | None) -> None:
        """The legacy callback's end event for a call it started itself."""
        call = self.by_event.pop(event_id, None)
        if call is None or call.source != "callback":
            return
        if call.kind == "embedding":
            self._pop_embed(call)
            chunks = response if isinstance(response, Sequence) else ()
            if exc is not None:
                self._finish(call, None, _status_of(exc), exc)
            else:
                self._finish(call, None, "ok", None, chunks=chunks)
            return
        if self.calls.get(call.span) is call:
            self.calls.pop(call.span, None)
        if exc is not None:
            self._finish(call, None, _status_of(exc), exc)
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
        pending = self.embeds.get(span)
        if pending:
            for item in [c for c in pending if c.source == "events"]:
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
        model, provider = _identify(instance, model_dict or {})
        call = Call(
            span,
            "embedding",
            source,
            ctx,
            model,
            provider,
            _now(_UTC),
            _clock(),
            run_parent,
            trace,
        )
        self.embeds.setdefault(span, []).append(call)
        return call

    def link_embedding(self, span: str | None, event_id: str) -> Call | None:
        """A legacy callback sees an embedding the instrumentation already started."""
        if span is None:
            return None
        for call in self.embeds.get(span, ()):
            if call.source == "events" and not call.linked:
                call.linked = True
                return call
        return None

    def end_embedding(self, span: str | None, chunks: Sequence[str], source: Source) -> None:
        """An embedding batch returned."""
        pending = self.embeds.get(span) if span is not None else None
        if not pending:
            return
        for call in pending:
            if call.source == source and not call.done:
                self._pop_embed(call)
                self._finish(call, None, "ok", None, chunks=chunks)
                return

    def _pop_embed(self, call: Call) -> None:
        pending = self.embeds.get(call.span)
        if pending is None:
            return
        try:
            pending.remove(call)
        except ValueError:
            return
        if not pending:
            self.embeds.pop(call.span, None)

    # ------------------------------------------------------------------ finishing
    def _release(self, call: Call) -> None:
        call.done = True
        guard = self.tracker._guard
        release: Callable[[Any], Any] | None = getattr(guard, "release", None)
        if call.reservation is not None and release is not None:
            try:
                release(call.reservation)
            except Exception:
                logger.exception("tokentrail: could not release a budget reservation")
        self.hub.settle_idle(self)

    def _finish(
        self,
        call: Call,
        response: Any,
        status: Status,
        exc: BaseException | None,
        *,
        chunks: Sequence[str] = (),
    ) -> None:
        if call.done:
            return
        call.done = True
        if call.event_id is not None:
            self.by_event.pop(call.event_id, None)
        try:
            if call.children:
                # Its nested calls reached the provider and recorded; one row per call.
                return
            record = self._record(call, response, status, exc, chunks)
            reservation = call.reservation
            if call.parent is not None:
                reservation, call.parent.reservation = call.parent.reservation, None
            if call.refusal is not None or (call.parent is not None and call.parent.refusal):
                self._warn_unstoppable()
            self.tracker.capture(record, context=call.ctx, reservation=reservation)
        except Exception:  # capturing must never break the app
            logger.exception("tokentrail: could not record a LlamaIndex call")
        finally:
            if not self.handles:  # an attached handle keeps the recorder in use
                self.hub.settle_idle(self)

    def _record(
        self,
        call: Call,
        response: Any,
        status: Status,
        exc: BaseException | None,
        chunks: Sequence[str],
    ) -> UsageRecord:
        latency_ms = (_clock() - call.t0) * 1000.0
        if call.kind == "embedding":
            usage = (
                Usage(input_tokens=lu.estimate_embedding(chunks, call.model), estimated=True)
                if chunks
                else Usage()
            )
            return UsageRecord(
                model=call.model,
                provider=call.provider,
                usage=usage,
                framework="llamaindex",
                ts=call.ts,
                latency_ms=latency_ms,
                operation="embedding",
                run_id=call.run_id,
                parent_run_id=call.parent_run_id,
                trace_id=call.trace_id,
                status=status,
                error_type=type(exc).__name__ if exc is not None else None,
            )
        final = response if response is not None else call.last
        source = call.usage_response if call.usage_response is not None else final
        raw = getattr(source, "raw", None)
        model, request_id, variant, raw_usage = lu.read_raw(raw)
        if source is not final and (model is None or request_id is None):
            final_model, final_request_id, _variant, _usage = lu.read_raw(
                getattr(final, "raw", None)
            )
            model = model or final_model
            request_id = request_id or final_request_id
        model = model or call.model
        reported = lu.usage_read(source, raw, raw_usage, call.provider, model)
        if reported is not None:
            usage = reported
        elif status == "ok" or call.last is not None:
            # Served without reported usage (a stream without include_usage, a local
            # model): estimate what was sent and what came back.
            usage = Usage(
                input_tokens=lu.estimate_prompt(call.messages, call.prompt, model, call.tools),
                output_tokens=lu.estimate_text(lu.response_text(final), model),
                estimated=True,
            )
        else:
            usage = Usage()  # failed before any answer: nothing known to be billed
        return UsageRecord(
            model=model,
            provider=call.provider,
            usage=usage,
            framework="llamaindex",
            ts=call.ts,
            latency_ms=latency_ms,
            run_id=call.run_id,
            parent_run_id=call.parent_run_id,
            trace_id=call.trace_id,
            streamed=call.streamed,
            status=status,
            error_type=type(exc).__name__ if exc is not None else None,
            request_id=request_id or _error_request_id(exc),
            price_variant=variant,
        )

    def _warn_unstoppable(self) -> None:
        if self._warned_unstoppable:
            return
        self._warned_unstoppable = True
        logger.warning(
            "tokentrail: a LlamaIndex call went over budget but could not be stopped: "
            "instrumentation events cannot raise. Add tokentrail's TokentrailLlamaIndexCallback "
            "to Settings.callback_manager or wrap the LLM with guard_llm(llm, tracker)."
        )


class Hub:
    """Process-wide: the span tree, the recorders in use, and the installed handlers."""

    def __init__(self, install: Callable[[], None], uninstall: Callable[[], None]) -> None:
        self._install = install
        self._uninstall = uninstall
        self.lock = threading.RLock()
        #: Open spans: id -> (parent id, instance whose method the span wraps).
        self.spans: dict[str, tuple[str | None, Any]] = {}
        self._by_tracker: dict[int, Recorder] = {}
        #: The recorders that receive events (a tuple: read without the lock).
        self.recorders: tuple[Recorder, ...] = ()
        self._installed = False

    def recorder(self, tracker: Tracker) -> Recorder:
        """The tracker's recorder, installing the handlers if needed. Call under ``lock``."""
        rec = self._by_tracker.get(id(tracker))
        if rec is None or rec.tracker is not tracker:
            rec = Recorder(tracker, self)
            self._by_tracker[id(tracker)] = rec
            self.recorders = (*self.recorders, rec)
        if not self._installed:
            self._install()
            self._installed = True
        return rec

    def settle_idle(self, rec: Recorder) -> None:
        """Drop a recorder nobody uses once its last call is done; uninstall when none is left."""
        if rec.in_use or rec.busy:
            return
        with self.lock:
            if rec.in_use or rec.busy or self._by_tracker.get(id(rec.tracker)) is not rec:
                return
            del self._by_tracker[id(rec.tracker)]
            self.recorders = tuple(r for r in self.recorders if r is not rec)
            if not self.recorders and self._installed:
                self._installed = False
                self._uninstall()
                self.spans.clear()


_PROVIDERS: dict[tuple[str | None, str | None, Any], str | None] = {}


def _provider(model: str | None, base_url: str | None, class_name: Any) -> str | None:
    """The call's provider id (memoized: a process talks to few model/endpoint pairs)."""
    key = (model, base_url, class_name if isinstance(class_name, str) else None)
    if key in _PROVIDERS:
        return _PROVIDERS[key]
    found = infer_provider(model=model, base_url=base_url, class_name=key[2] or None)
    if len(_PROVIDERS) < 1024:
        _PROVIDERS[key] = found
    return found


def _identify(instance: Any, model_dict: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """Model name and provider id of a call of ``instance`` (the LLM, if known).

    What ``_model_name``, ``_base_url`` and ``_provider`` say, read in one function: this
    runs at every call's start (``tests/test_llamaindex_hotpath.py`` compares the two).
    """
    get = model_dict.get
    model = get("model_name")
    if not (isinstance(model, str) and model):
        model = get("model")
        if not (isinstance(model, str) and model):
            model = None
    if model == "unknown":
        model = None
    base_url = None
    if instance is not None:
        cls = type(instance)
        names = _URL_FIELDS[cls] if cls in _URL_FIELDS else _url_fields(cls)
        if names is None:
            base_url = _base_url(instance)
        else:
            fields = instance.__dict__
            for name in names:
                value = fields.get(name)
                if isinstance(value, str) and value:
                    base_url = value
                    break
            else:
                if instance.__pydantic_extra__:
                    base_url = _base_url(instance)
    class_name = get("class_name")
    key = (model, base_url, class_name if isinstance(class_name, str) else None)
    provider = _PROVIDERS.get(key, _UNKNOWN)
    if provider is _UNKNOWN:
        provider = _provider(model, base_url, class_name)
    return model, provider  # type: ignore[return-value]


_UNKNOWN = object()


# (usage, model, request id, price variant, latency in ms) of the usual call.
_Plain = tuple[Usage, str, str | None, str | None, float]
# The usual call's metadata: none (read only, never handed out).
_NO_METADATA: Mapping[str, Any] = MappingProxyType({})


def _plain_record_of(call: Call, plain: _Plain) -> UsageRecord:
    """The record of the usual call: the one ``_record`` builds (see :func:`_plain_result`)."""
    usage, model, request_id, variant, latency_ms = plain
    return UsageRecord(
        model=model,
        provider=call.provider,
        usage=usage,
        framework="llamaindex",
        ts=call.ts,
        latency_ms=latency_ms,
        run_id=call.run_id,
        parent_run_id=call.parent_run_id,
        trace_id=call.trace_id,
        request_id=request_id,
        price_variant=variant,
    )


def _plain_result(call: Call, response: Any) -> _Plain | None:
    """The usual finished call, read in one pass; ``None``: not the usual one.

    The usual call is an OpenAI (or Azure) chat or completion whose ``response.raw`` is the
    ``openai`` SDK's response (its class declares ``model``, ``id``, ``service_tier`` and
    ``usage``) with the SDK's ``CompletionUsage``, every count a plain int within range and
    every subset within its parent. Its record is the one ``_record`` builds through
    ``read_raw`` and ``usage_read`` (``tests/test_llamaindex_hotpath.py`` checks it shape
    by shape); anything else returns ``None`` and goes that general way.
    """
    t1 = _clock()
    provider = call.provider
    if provider not in _OPENAI_SEMANTICS or call.kind == "embedding" or response is None:
        return None
    # Subscripts, not .get(): a field missing from an object's __dict__ (one built by
    # model_construct without it), like an unknown class, is left to the general path.
    try:
        raw = response.raw
        cls = type(raw)
        if not (_PLAIN_RAW[cls] if cls in _PLAIN_RAW else _decide(_PLAIN_RAW, cls, _RAW_NAMES)):
            return None
        fields = raw.__dict__
        usage = fields["usage"]
        cls = type(usage)
        if not (_SDK_USAGE[cls] if cls in _SDK_USAGE else _is_sdk_usage(cls)):
            return None  # no usage, or not the SDK's: usage_read decides
        model = fields["model"]
        if type(model) is not str or not model:
            return None  # the general path looks further (Anthropic-style message.model)
        tier = fields["service_tier"]
        variant = None
        if tier is not None:
            if type(tier) is not str:
                return None
            variant = tier.lower()
            if variant not in _VARIANTS:
                variant = None
        if variant is None and usage.__pydantic_extra__:
            return None  # read_raw then looks for a tier in the usage's extras
        counts = usage.__dict__
        inp = counts["prompt_tokens"]
        out = counts["completion_tokens"]
        details = counts["prompt_tokens_details"]
        if details is None:
            cache_read = cache_write = audio_in = 0
        else:
            # A class that declares the names: its extras cannot hold them (_details
            # reads the declared field first).
            cls = type(details)
            if not (
                _PROMPT_DETAILS[cls]
                if cls in _PROMPT_DETAILS
                else _decide(_PROMPT_DETAILS, cls, _PROMPT_NAMES)
            ):
                return None
            found = details.__dict__
            cache_read = found["cached_tokens"]
            cache_write = found["cache_write_tokens"]
            audio_in = found["audio_tokens"]
            if cache_read is None:
                cache_read = 0
            if cache_write is None:
                cache_write = 0
            if audio_in is None:
                audio_in = 0
        details = counts["completion_tokens_details"]
        if details is None:
            reasoning = audio_out = 0
        else:
            cls = type(details)
            if not (
                _COMPLETION_DETAILS[cls]
                if cls in _COMPLETION_DETAILS
                else _decide(_COMPLETION_DETAILS, cls, _COMPLETION_NAMES)
            ):
                return None
            found = details.__dict__
            reasoning = found["reasoning_tokens"]
            audio_out = found["audio_tokens"]
            if reasoning is None:
                reasoning = 0
            if audio_out is None:
                audio_out = 0
        rid = fields["id"]
    except (KeyError, AttributeError):
        return None
    if inp is None:
        inp = 0
    if out is None:
        out = 0
    # Plain ints (bool is not: type(True) is not int), none negative or over the maximum
    # (the bitwise or of non-negative ints is at least each of them; negative if one is).
    if not (
        type(inp)
        is type(out)
        is type(cache_read)
        is type(cache_write)
        is type(audio_in)
        is type(reasoning)
        is type(audio_out)
        is int
    ):
        return None
    ored = inp | out | cache_read | cache_write | audio_in | reasoning | audio_out
    if ored < 0 or ored > MAX_TOKENS:
        return None
    if cache_read + cache_write > inp or audio_in > inp or reasoning + audio_out > out:
        return None
    return (
        trusted_usage(inp, out, cache_read, cache_write, 0, audio_in, reasoning, audio_out),
        model,
        rid if type(rid) is str and rid else None,
        variant,
        (t1 - call.t0) * 1000.0,
    )


# Per class, decided once: does it declare (as pydantic fields) the names _plain_result
# reads from its objects' __dict__? Raw responses, prompt and completion token details.
_PLAIN_RAW: dict[type, bool] = {}
_PROMPT_DETAILS: dict[type, bool] = {}
_COMPLETION_DETAILS: dict[type, bool] = {}
_RAW_NAMES = frozenset({"model", "id", "service_tier", "usage"})
_PROMPT_NAMES = frozenset({"cached_tokens", "cache_write_tokens", "audio_tokens"})
_COMPLETION_NAMES = frozenset({"reasoning_tokens", "audio_tokens"})


def _decide(memo: dict[type, bool], cls: type, names: frozenset[str]) -> bool:
    """Whether ``cls`` is a pydantic model declaring every one of ``names`` (memoized)."""
    declared = getattr(cls, "__pydantic_fields__", None)
    found = isinstance(declared, Mapping) and names <= declared.keys()
    if len(memo) < 1024:
        memo[cls] = found
    return found


def _status_of(exc: BaseException | None) -> Status:
    return "cancelled" if isinstance(exc, _CANCELLED) else "error"


def _error_request_id(exc: BaseException | None) -> str | None:
    value = getattr(exc, "request_id", None) if exc is not None else None
    return value if isinstance(value, str) and value else None


def _model_name(model_dict: Mapping[str, Any]) -> str | None:
    name = model_dict.get("model_name")
    if not (isinstance(name, str) and name):
        name = model_dict.get("model")
        if not (isinstance(name, str) and name):
            return None
    return None if name == "unknown" else name


_URL_NAMES = ("api_base", "base_url", "azure_endpoint", "endpoint")
#: Per LLM class: which of ``_URL_NAMES`` are pydantic fields (None: not a pydantic model).
_URL_FIELDS: dict[type, tuple[str, ...] | None] = {}


def _url_fields(cls: type) -> tuple[str, ...] | None:
    if cls in _URL_FIELDS:
        return _URL_FIELDS[cls]
    declared = getattr(cls, "__pydantic_fields__", None)
    found = tuple(n for n in _URL_NAMES if n in declared) if isinstance(declared, Mapping) else None
    if len(_URL_FIELDS) < 1024:
        _URL_FIELDS[cls] = found
    return found


def _base_url(instance: Any) -> str | None:
    if instance is None:
        return None
    names = _url_fields(type(instance))
    if names is None:
        for name in _URL_NAMES:
            value = getattr(instance, name, None)
            if isinstance(value, str) and value:
                return value
        return None
    # A pydantic LLM: its URL fields, then (rarely) URL names among its extras.
    fields = instance.__dict__
    for name in names:
        value = fields.get(name)
        if isinstance(value, str) and value:
            return value
    extra = instance.__pydantic_extra__
    if extra:
        for name in _URL_NAMES:
            value = extra.get(name)
            if isinstance(value, str) and value:
                return value
    return None


def _max_tokens(
    model_dict: Mapping[str, Any], kwargs: Mapping[str, Any] | None, instance: Any
) -> int | None:
    for value in (
        (kwargs or {}).get("max_tokens"),
        (kwargs or {}).get("max_completion_tokens"),
        lu.attr(instance, "max_tokens"),
        model_dict.get("num_output"),
    ):
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None
