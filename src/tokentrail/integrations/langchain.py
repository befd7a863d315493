"""LangChain integration: one callback handler that records every model call it sees.

``tracker.langchain(...)`` returns a :class:`TokentrailCallbackHandler`; ``tracker.track()``
blocks attach one automatically to every LangChain call made inside them (through
LangChain's inheritable configure hook), so no ``callbacks=`` are needed there.

How one model call becomes one row:

* ``on_chat_model_start`` / ``on_llm_start`` (in the caller's context): model, provider,
  attribution (LangChain ``metadata`` keys ``user_id``/``session_id``/``operation`` and
  ``tags`` > handler arguments > ``track()`` blocks > tracker defaults) and the budget
  pre-flight (which may raise :class:`~tokentrail.BudgetExceededError`, on purpose). The
  state is kept by ``run_id`` because the end events carry no metadata.
* ``on_llm_end``: usage from the generation's ``usage_metadata`` (once, even with ``n>1``
  choices), else ``llm_output``; the returned model name wins; a LangChain LLM-cache hit
  (``usage_metadata["total_cost"] == 0``, set by langchain-core on cache replays) is a
  zero-token, zero-cost row marked ``cache_hit``; a stream without usage is estimated
  (tiktoken) from the prompt and the streamed text and marked ``estimated``.
* ``on_llm_error``: ``status="error"`` with ``error_type``; a stream the consumer abandons
  (``GeneratorExit``, task cancellation, ``KeyboardInterrupt``) is ``status="cancelled"``
  with the tokens seen so far (estimated).

Every handler of the same tracker shares one table of calls in flight, so a call seen by
two handlers (the same handler attached twice, an explicit handler inside a ``track()``
block) is still recorded once.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from contextvars import ContextVar, Token
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.tracers.context import register_configure_hook

from ..context import Attribution, CallContext, Run, active_runs
from ..errors import BudgetExceededError
from ..extract.langchain import general_usage_metadata, plain_usage_metadata
from ..providers import infer_provider
from ..records import Status, UsageRecord
from ..usage import Usage

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage
    from langchain_core.outputs import LLMResult

    from ..budget import Reservation
    from ..tracker import Tracker

__all__ = ["TokentrailCallbackHandler", "enter_track", "exit_track"]

logger = logging.getLogger("tokentrail")

# Tags LangChain and LangGraph add on their own: step counters and tracing flags.
_NOISE_TAG = re.compile(r"^(seq:step:\d+|graph:step:\d+|langsmith:.*|map:key:.*)$")
# LangChain metadata keys that are plumbing, not the user's attribution.
_NOISE_META = re.compile(r"^(ls_|langgraph_(?!node$)|checkpoint_|__)")
_ATTRIBUTION_KEYS = ("user_id", "session_id", "operation")
_CANCELLED = (GeneratorExit, asyncio.CancelledError, KeyboardInterrupt)
_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}
# Shared, never mutated: the empty mapping for absent metadata/params and the zero usage
# (Usage is frozen; building one costs ~2 µs, a measurable share of a call's overhead).
_NOTHING: Mapping[str, Any] = {}
_NO_USAGE = Usage()
# The memos below hold values derived from what repeats on every call (the same model
# object, the same metadata keys and tags); each is cleared when full. Nothing is keyed on
# token counts: real calls rarely repeat them.
_MEMO_SIZE = 1024
# Bound once: each call reads both clocks (the start for ``ts``, the monotonic one for the
# latency). The start is kept as microseconds since the epoch, which the spool writes as is:
# ``datetime.now(timezone.utc)`` cost 2-3 µs in the middle of a LangChain call, and is built
# only for a call that gets a record (see ``_started_at``).
_wall_ns = time.time_ns
_clock = time.perf_counter
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_running_loop = asyncio._get_running_loop


@dataclass(slots=True)
class _Call:
    """A model call in flight (between its start and end events)."""

    model: str | None
    provider: str | None
    ts: int  # microseconds since the epoch (UTC)
    t0: float
    context: CallContext
    reservation: Reservation | None
    run_id: str
    parent_run_id: str | None
    trace_id: str
    metadata: dict[str, Any]
    # Kept in memory only, for estimating a stream that reports no usage; never stored.
    messages: Any = None
    chat: bool = True
    # The streamed text pieces; created by the first token (most calls stream none).
    texts: list[str] | None = None
    last_chunk: Any = None
    # The asyncio task the call started in and our done-callback on it.
    watch: tuple[asyncio.Task[Any], Any] | None = None
    # LangChain's invocation_params dict: one object shared by the prompts of one batch.
    batch: Any = None


class _Calls:
    """The calls in flight of one tracker and the root of every run seen (for trace ids).

    No lock: every access is one dict operation (``setdefault``, ``pop``, ``get``, ``copy``),
    which is atomic in CPython (and per dict in free-threaded builds), so two threads ending
    the same run cannot both get its call. A lock around each cost two extra calls per event.
    """

    def __init__(self) -> None:
        self.calls: dict[UUID, _Call] = {}
        self.roots: dict[UUID, UUID] = {}

    def root_of(self, run_id: UUID, parent_run_id: UUID | None) -> UUID:
        if parent_run_id is None:
            return run_id
        # A parent the handler never saw (handler attached to the model only) is the
        # best root we know.
        return self.roots.get(parent_run_id, parent_run_id)


_registries: weakref.WeakKeyDictionary[Tracker, _Calls] = weakref.WeakKeyDictionary()
_registries_lock = threading.Lock()


def _calls_of(tracker: Tracker) -> _Calls:
    with _registries_lock:
        found = _registries.get(tracker)
        if found is None:
            found = _registries[tracker] = _Calls()
        return found


class TokentrailCallbackHandler(BaseCallbackHandler):
    """A LangChain callback handler that records one usage row per model call.

    Example::

        handler = tracker.langchain(user_id="u1", operation="chat")
        chain.invoke(inputs, config={"callbacks": [handler]})
        llm = ChatOpenAI(model="gpt-4o-mini", callbacks=[handler])   # or on the model

    Works for ``invoke``/``stream``/``batch`` and their async forms, LCEL chains, agents
    and LangGraph graphs. Thread-safe and async-safe. It never raises into the chain
    except :class:`~tokentrail.BudgetExceededError` from a budget set with
    ``tracker.budget(...)`` (that is why ``raise_error`` is true).
    """

    #: Let the budget guard's BudgetExceededError reach the caller (sync and async).
    raise_error: bool = True
    #: Cheap and non-blocking: run in the caller's thread/loop, no executor hop.
    run_inline: bool = True
    # LangChain reads the ignore_* flag of every handler before each event; plain class
    # attributes (same values as the base class's properties) are cheaper to read.
    ignore_llm: bool = False
    ignore_chat_model: bool = False
    ignore_chain: bool = False
    ignore_agent: bool = False
    ignore_retriever: bool = False
    ignore_retry: bool = False
    ignore_custom_event: bool = False

    def __init__(self, tracker: Tracker, attribution: Attribution | None = None) -> None:
        super().__init__()
        self.tracker = tracker
        self.attribution = attribution if attribution is not None else Attribution()
        self._calls = _calls_of(tracker)
        # (tracker defaults and handler attribution it was built from, the context of a
        # call with nothing specific)
        self._context_cache: tuple[Attribution, Attribution, CallContext] | None = None

    def __repr__(self) -> str:
        return f"TokentrailCallbackHandler({self.tracker!r}, {self.attribution!r})"

    # ------------------------------------------------------------------ starts
    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Open a call (chat models)."""
        self._start(
            serialized,
            messages[0] if messages else [],
            True,
            run_id,
            parent_run_id,
            tags,
            metadata,
            kwargs,
        )

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Open a call (text-completion LLMs)."""
        self._start(serialized, prompts, False, run_id, parent_run_id, tags, metadata, kwargs)

    def _start(
        self,
        serialized: Mapping[str, Any] | None,
        messages: Any,
        chat: bool,
        run_id: UUID,
        parent_run_id: UUID | None,
        tags: list[str] | None,
        metadata: Mapping[str, Any] | None,
        kwargs: Mapping[str, Any],
    ) -> None:
        table = self._calls.calls
        if run_id in table:  # a second handler of this tracker: already counted
            return
        try:
            meta = metadata or _NOTHING
            batch = kwargs.get("invocation_params")
            params = batch or _NOTHING
            # Each step decides the usual case (a plain str under the first key looked for,
            # a dict without the keys looked for) in a C call or two and leaves anything else
            # to the general helper.
            if type(params) is dict:
                model = params.get("model")
                if type(model) is not str or not model:
                    if params.keys().isdisjoint(_MODEL_KEYS):
                        model = meta.get("ls_model_name")
                        if type(model) is not str or not model:
                            model = _str(model)
                    else:
                        model = _model_from_start(params, meta)
                if params.keys().isdisjoint(_BASE_URL_KEYS):
                    base_url = None
                else:
                    base_url = _params_base_url(params)
            else:
                model = _model_from_start(params, meta)
                base_url = _params_base_url(params)
            ls_provider = meta.get("ls_provider")
            if type(ls_provider) is not str or not ls_provider:
                ls_provider = _str(ls_provider)
            # What the provider is follows from these and the serialized model (one dict per
            # model object, LangChain caches it): inferred once per model and endpoint. The
            # entry holds the dict, so its id cannot be reused by another while it is there.
            key = (id(serialized), ls_provider, model, base_url)
            found = _PROVIDERS.get(key)
            if found is not None and found[0] is serialized:
                provider = found[1]
            else:
                provider = _provider(serialized, ls_provider, model, base_url, key)
            if tags or "user_id" in meta or "session_id" in meta or "operation" in meta:
                from_call = _attribution_from(meta, tags)
            else:
                from_call = _EMPTY
            tracker = self.tracker
            if from_call is _EMPTY and not active_runs():
                # The common case: nothing call-specific and no track() block, so the context
                # is the handler's own, the same for every call (as for the LlamaIndex handle).
                defaults = tracker.defaults
                own = self.attribution  # public: a user may replace it between calls
                cached = self._context_cache
                if cached is None or cached[0] is not defaults or cached[1] is not own:
                    cached = self._context_cache = (defaults, own, tracker.call_context(own))
                context = cached[2]
            else:
                explicit = (
                    self.attribution if from_call is _EMPTY else from_call.over(self.attribution)
                )
                context = tracker.call_context(explicit)
            if not tracker.guarded:
                reservation = None  # no budget: nothing to reserve, nothing to convert
            else:
                reservation = self._preflight(
                    model, provider, messages, chat, params, context, run_id
                )
            run = str(run_id)
            if parent_run_id is None:
                parent = None
                trace = run  # a root run is its own trace: one UUID -> str conversion, not two
            else:
                parent = str(parent_run_id)
                root = self._calls.roots.get(parent_run_id, parent_run_id)
                # The root is most often the parent itself (a model called by a chain).
                trace = parent if root is parent_run_id else str(root)
            call = _Call(
                model,
                provider,
                _wall_ns() // 1000,
                _clock(),
                context,
                reservation,
                run,
                parent,
                trace,
                _user_metadata(meta),
                messages,
                chat,
                batch=batch,
            )
        except BudgetExceededError:
            # The whole batch is abandoned before any request leaves: give back what its
            # earlier prompts reserved (they will get no end event).
            self._drop_batch(run_id, kwargs.get("invocation_params"))
            raise  # refused before the request leaves: the one error meant for the caller
        except Exception:
            logger.exception("tokentrail: could not read a LangChain model start")
            return
        if table.setdefault(run_id, call) is not call:  # another thread's handler was first
            if call.reservation is not None:
                self._release(call)
            return
        # An async caller cancelled while LangChain awaits the request gets no end event
        # (agenerate's gather is cancelled with it): close such calls when the task ends.
        # (_get_running_loop: None without raising, the cheap check for sync callers.)
        task = asyncio.current_task() if _running_loop() is not None else None
        if task is not None:
            callback = functools.partial(self._task_done, run_id)
            task.add_done_callback(callback)
            call.watch = (task, callback)

    def _task_done(self, run_id: UUID, task: asyncio.Task[Any]) -> None:
        call = self._pop(run_id)
        if call is None:
            return  # the call ended normally
        try:
            record = self._record(call, None, "cancelled", None)
            record.error_type = "CancelledError" if task.cancelled() else "NoEndEvent"
        except Exception:
            logger.exception("tokentrail: could not record a cancelled LangChain call")
            record = self._bare_record(call, "cancelled")
        self._capture(record, call)

    def _preflight(
        self,
        model: str | None,
        provider: str | None,
        messages: Any,
        chat: bool,
        params: Mapping[str, Any],
        context: CallContext,
        run_id: UUID,
    ) -> Reservation | None:
        if not self.tracker.guarded:
            return None  # no budget: nothing to reserve, nothing to convert
        try:
            from ..budget import PreflightRequest

            request = PreflightRequest(
                model=model,
                provider=provider,
                messages=_as_dicts(messages, chat) if chat else None,
                prompt=None if chat else "\n".join(str(p) for p in messages or ()),
                max_tokens=_max_tokens(params),
                tools=params.get("tools"),
                context=context,
                run_id=str(run_id),
            )
        except Exception:
            logger.exception("tokentrail: could not build a budget pre-flight request")
            return None
        try:
            return self.tracker.preflight(request)
        except BudgetExceededError:
            raise  # the one error tokentrail raises on purpose
        except Exception:
            logger.exception("tokentrail: the budget pre-flight failed; the call goes ahead")
            return None

    # ------------------------------------------------------------------ stream
    def on_llm_new_token(
        self,
        token: str | list[str | dict[str, Any]],
        *,
        chunk: Any = None,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Remember what was streamed (for cancelled streams and streams without usage)."""
        call = self._calls.calls.get(run_id)
        if call is None:
            return
        # Two handlers of one tracker get the same chunk object: count it once.
        marker = chunk if chunk is not None else token
        if marker is call.last_chunk and marker is not None:
            return
        call.last_chunk = marker
        texts = call.texts
        if texts is None:
            texts = call.texts = []
        if isinstance(token, str):
            if token:
                texts.append(token)
        else:
            texts.append(_content_text(token))

    # ------------------------------------------------------------------ ends
    def on_llm_end(
        self,
        response: LLMResult,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Close a call: usage, returned model, latency; hand the record to the tracker."""
        call = self._calls.calls.pop(run_id, None)
        if call is None:
            return
        if call.watch is not None:
            self._unwatch(call)
        try:
            # The usual answer (one chat generation with a plain usage_metadata) is read
            # in one function and, when nothing else needs its record, stored in one step;
            # anything else, or anything odd, is read by the general reader.
            plain = _plain_result(call, response)
            if plain is None:
                record = self._record(call, response, "ok", None)
            else:
                usage, model, request_id, variant, latency_ms = plain
                if variant is None and self.tracker.capture_plain(
                    "langchain",
                    model,
                    call.provider,
                    usage,
                    call.ts,
                    latency_ms,
                    call.context,
                    call.run_id,
                    call.parent_run_id,
                    call.trace_id,
                    call.metadata,
                    bool(call.texts),
                    request_id,
                ):
                    return
                record = _plain_record_of(call, plain)
        except Exception:
            logger.exception("tokentrail: could not read a LangChain model result")
            record = self._bare_record(call, "ok")
        try:
            self.tracker.capture(record, context=call.context, reservation=call.reservation)
        except Exception:  # Tracker.capture never raises; belt and braces
            logger.exception("tokentrail: could not capture a LangChain model call")

    def on_llm_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Close a failed or abandoned call."""
        call = self._pop(run_id)
        if call is None:
            return
        status: Status = "cancelled" if isinstance(error, _CANCELLED) else "error"
        try:
            response = kwargs.get("response")
            record = self._record(call, response, status, error)
        except Exception:
            logger.exception("tokentrail: could not read a failed LangChain model call")
            record = self._bare_record(call, status)
        record.error_type = type(error).__name__
        self._capture(record, call)

    def _pop(self, run_id: UUID, calls: _Calls | None = None) -> _Call | None:
        calls = self._calls if calls is None else calls
        call = calls.calls.pop(run_id, None)
        if call is not None and call.watch is not None:
            self._unwatch(call)
        return call

    @staticmethod
    def _unwatch(call: _Call) -> None:
        watch = call.watch
        call.watch = None
        if watch is None:
            return
        task, callback = watch
        # A long-lived task (a server's connection handler) makes many calls: do not
        # let their callbacks pile up. Only the task's own loop thread may touch it.
        try:
            if asyncio.get_running_loop() is task.get_loop():
                task.remove_done_callback(callback)
        except RuntimeError:
            pass

    def _capture(self, record: UsageRecord, call: _Call) -> None:
        try:
            self.tracker.capture(record, context=call.context, reservation=call.reservation)
        except Exception:  # Tracker.capture never raises; belt and braces
            logger.exception("tokentrail: could not capture a LangChain model call")

    def _drop_batch(self, run_id: UUID, params: Any) -> None:
        """Forget the calls of a refused batch (and this run in other trackers), unsent."""
        with _registries_lock:
            registries = list(_registries.items())
        for tracker, calls in registries:
            # A copy (one atomic dict operation): other threads may start calls meanwhile.
            doomed = [
                rid
                for rid, c in calls.calls.copy().items()
                if rid == run_id or (params is not None and c.batch is params)
            ]
            for rid in doomed:
                call = self._pop(rid, calls)
                if call is not None and call.reservation is not None:
                    tracker.release(call.reservation)

    def _release(self, call: _Call) -> None:
        self.tracker.release(call.reservation)

    def _bare_record(self, call: _Call, status: Status) -> UsageRecord:
        return UsageRecord(
            model=call.model,
            provider=call.provider,
            usage=_NO_USAGE,
            framework="langchain",
            ts=_started_at(call),
            latency_ms=(time.perf_counter() - call.t0) * 1000.0,
            run_id=call.run_id,
            parent_run_id=call.parent_run_id,
            trace_id=call.trace_id,
            metadata=call.metadata,
            streamed=bool(call.texts),
            status=status,
        )

    def _record(
        self,
        call: _Call,
        response: LLMResult | None,
        status: Status,
        error: BaseException | None,
    ) -> UsageRecord:
        latency_ms = (time.perf_counter() - call.t0) * 1000.0
        result = _read_result(response)
        model = result.model or call.model
        metadata = call.metadata
        usage = result.usage
        if result.cache_hit:
            if usage is not None and not usage.is_empty:
                # No request was sent: keep what the cached answer had cost, for savings.
                metadata = {
                    **metadata,
                    "saved_input_tokens": usage.input_tokens,
                    "saved_output_tokens": usage.output_tokens,
                }
            usage = _NO_USAGE
        elif usage is None:
            text = result.text if result.text is not None else "".join(call.texts or ())
            # An error with nothing streamed was most likely not billed; a cancelled call
            # most likely reached the provider (estimated as a lower bound).
            if status != "error" or text:
                usage = _estimate(call, model, text)
        # Built once with every field (as _bare_record's, plus what the result says).
        return UsageRecord(
            model=model,
            provider=call.provider,
            usage=usage if usage is not None else _NO_USAGE,
            framework="langchain",
            ts=_started_at(call),
            latency_ms=latency_ms,
            run_id=call.run_id,
            parent_run_id=call.parent_run_id,
            trace_id=call.trace_id,
            metadata=metadata,
            streamed=bool(call.texts),
            status=status,
            request_id=result.request_id or _error_request_id(error),
            price_variant=result.variant,
            cache_hit=result.cache_hit,
        )

    # ------------------------------------------------------------------ trace roots
    def _open_parent(self, run_id: UUID, parent_run_id: UUID | None) -> None:
        calls = self._calls
        if run_id in calls.roots:
            return
        calls.roots[run_id] = calls.root_of(run_id, parent_run_id)

    def _close_parent(self, run_id: UUID) -> None:
        self._calls.roots.pop(run_id, None)

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Remember the chain's root run (for the trace id of the model calls inside)."""
        self._open_parent(run_id, parent_run_id)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Forget the chain."""
        self._close_parent(run_id)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """Forget the chain."""
        self._close_parent(run_id)

    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Remember the tool run's root."""
        self._open_parent(run_id, parent_run_id)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Forget the tool run."""
        self._close_parent(run_id)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """Forget the tool run."""
        self._close_parent(run_id)

    def on_retriever_start(
        self,
        serialized: dict[str, Any] | None,
        query: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Remember the retriever run's root."""
        self._open_parent(run_id, parent_run_id)

    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Forget the retriever run."""
        self._close_parent(run_id)

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """Forget the retriever run."""
        self._close_parent(run_id)


# ---------------------------------------------------------------------- track() blocks
_track_vars: weakref.WeakKeyDictionary[Tracker, ContextVar[TokentrailCallbackHandler | None]] = (
    weakref.WeakKeyDictionary()
)


def _track_var(tracker: Tracker) -> ContextVar[TokentrailCallbackHandler | None]:
    with _registries_lock:
        var = _track_vars.get(tracker)
        if var is None:
            # One inheritable configure hook per tracker: LangChain adds the handler the
            # variable holds to every callback manager configured in this context.
            var = ContextVar(f"tokentrail_langchain_{id(tracker):x}", default=None)
            register_configure_hook(var, True)
            _track_vars[tracker] = var
        return var


def enter_track(tracker: Tracker, run: Run) -> Token[TokentrailCallbackHandler | None]:
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


def exit_track(tracker: Tracker, run: Run, token: Token[TokentrailCallbackHandler | None]) -> None:
    """Undo :func:`enter_track` (the outer block's handler, if any, is active again)."""
    var = _track_var(tracker)
    try:
        var.reset(token)
    except ValueError:
        # Exited in another context (a generator finalized elsewhere): clear it here.
        var.set(None)


# ---------------------------------------------------------------------- reading events
@dataclass(slots=True)
class _Result:
    usage: Usage | None = None
    model: str | None = None
    request_id: str | None = None
    variant: str | None = None
    cache_hit: bool = False
    text: str | None = None


def _read_result(response: LLMResult | None) -> _Result:
    """Usage, returned model, request id and cache-hit flag from an ``LLMResult``."""
    if response is None:
        return _Result()
    groups = response.generations or []
    # One prompt per model run is the rule (LangChain splits batches into runs).
    generations = groups[0] if len(groups) == 1 else [g for group in groups for g in group]
    message = None
    usage_metadata = None
    for gen in generations:
        msg = getattr(gen, "message", None)
        um = getattr(msg, "usage_metadata", None)
        if um:
            message, usage_metadata = msg, um
            break
    if message is None and generations:
        message = getattr(generations[0], "message", None)
    response_metadata: Mapping[str, Any] = getattr(message, "response_metadata", None) or _NOTHING
    llm_output: Mapping[str, Any] = response.llm_output or _NOTHING
    model = _first_str(response_metadata, _RESULT_MODEL_KEYS) or _first_str(
        llm_output, _RESULT_MODEL_KEYS
    )
    request_id = _first_str(response_metadata, _REQUEST_ID_KEYS)
    variant = None
    cache_hit = False
    if usage_metadata:
        cache_hit = _is_cache_hit(usage_metadata)
        usage = plain_usage_metadata(usage_metadata)
        if usage is not None:
            # A plain usage_metadata has no tier keys: only the response can name a tier.
            if response_metadata.get("service_tier") is not None:
                variant = _service_tier(None, response_metadata)
        else:
            usage = general_usage_metadata(usage_metadata)
            variant = _service_tier(usage_metadata, response_metadata)
    else:
        usage = _from_llm_output(llm_output)
        variant = _service_tier(None, response_metadata)
    if usage is not None or not generations:
        return _Result(usage, model, request_id, variant, cache_hit)
    # Every generation of one run is a choice of the same request: their texts add up.
    parts: list[str] = []
    for gen in generations:
        parts.append(getattr(gen, "text", "") or "")
        msg = getattr(gen, "message", None)
        for tc in getattr(msg, "tool_calls", None) or ():
            parts.append(str(tc.get("name", "")) + json.dumps(tc.get("args", {}), default=str))
    return _Result(usage, model, request_id, variant, cache_hit, "".join(parts))


# (usage, model, request id, price variant, latency in ms) of the usual call.
_Plain = tuple[Usage, str | None, str | None, str | None, float]


def _plain_result(call: _Call, response: LLMResult) -> _Plain | None:
    """What the usual successful chat call says, read in one pass.

    One generation whose message carries a plain ``usage_metadata`` (see
    ``plain_usage_metadata``); ``None`` for anything else (no or several generations, no
    or unusual usage, a cache replay), which ``_read_result`` reads. The model is the
    returned one, else the one the call started with.
    """
    t1 = _clock()
    groups = response.generations
    if type(groups) is not list or len(groups) != 1:
        return None
    generations = groups[0]
    if type(generations) is not list or len(generations) != 1:
        return None
    message = getattr(generations[0], "message", None)
    um = getattr(message, "usage_metadata", None)
    if type(um) is not dict or not um or "total_cost" in um:
        return None
    usage = plain_usage_metadata(um)
    if usage is None:
        return None
    meta: Mapping[str, Any] = getattr(message, "response_metadata", None) or _NOTHING
    model = meta.get("model_name")
    if type(model) is not str or not model:
        model = _first_str(meta, _RESULT_MODEL_KEYS) or _first_str(
            response.llm_output or _NOTHING, _RESULT_MODEL_KEYS
        )
    if "request_id" in meta or "id" in meta:
        request_id = _first_str(meta, _REQUEST_ID_KEYS)
    else:
        request_id = None
    # A plain usage_metadata has no tier keys: only the response can name a tier.
    variant = None if meta.get("service_tier") is None else _service_tier(None, meta)
    return usage, model or call.model, request_id, variant, (t1 - call.t0) * 1000.0


def _plain_record_of(call: _Call, plain: _Plain) -> UsageRecord:
    """The record of the usual call: the one the general path builds
    (``tests/test_langchain_hotpath.py`` checks it shape by shape)."""
    usage, model, request_id, variant, latency_ms = plain
    # status "ok" and cache_hit False are the record's defaults.
    return UsageRecord(
        model=model,
        provider=call.provider,
        usage=usage,
        framework="langchain",
        ts=_started_at(call),
        latency_ms=latency_ms,
        run_id=call.run_id,
        parent_run_id=call.parent_run_id,
        trace_id=call.trace_id,
        metadata=call.metadata,
        streamed=bool(call.texts),
        request_id=request_id,
        price_variant=variant,
    )


def _started_at(call: _Call) -> datetime:
    """When the call started, as a record holds it (UTC)."""
    return _EPOCH + timedelta(microseconds=call.ts)


def _is_cache_hit(usage_metadata: Mapping[str, Any]) -> bool:
    # langchain-core replays cached chat generations with usage_metadata["total_cost"] = 0
    # (BaseChatModel._convert_cached_generations); providers never set that key.
    return "total_cost" in usage_metadata and not usage_metadata.get("total_cost")


def _from_llm_output(llm_output: Mapping[str, Any]) -> Usage | None:
    if not llm_output:
        return None
    from ..extract import from_langchain_llm_output

    return from_langchain_llm_output(llm_output)


def _service_tier(
    usage_metadata: Mapping[str, Any] | None, response_metadata: Mapping[str, Any]
) -> str | None:
    tier = None
    if usage_metadata:
        # Only non-standard detail keys (priority_cache_read, flex...) can name a tier.
        from ..extract import service_tier_from_usage_metadata

        tier = service_tier_from_usage_metadata(usage_metadata)
    if tier is None:
        tier = _str(response_metadata.get("service_tier"))
    if tier is None:
        return None
    tier = tier.lower()
    # "default"/"auto"/"standard" are the standard price; only real variants change it.
    return tier if tier in ("flex", "priority", "batch") else None


def _estimate(call: _Call, model: str | None, output_text: str) -> Usage:
    """Estimate a call the provider reported no usage for (prompt + what was generated)."""
    from ..estimate import count_message_tokens, count_text_tokens

    messages = call.messages if call.messages is not None else []
    prompt = count_message_tokens(_as_dicts(messages, call.chat), model=model)
    completion = count_text_tokens(output_text, model=model) if output_text else 0
    return Usage.from_counts(
        input_tokens=prompt, output_tokens=completion, estimated=True, source="estimate"
    )


def _error_request_id(error: BaseException | None) -> str | None:
    if error is None:
        return None
    return _str(getattr(error, "request_id", None))


# ---------------------------------------------------------------------- reading starts
def _str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def _first_str(mapping: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    """``_str`` of the first of ``keys`` that gives a non-empty one (absent keys cheaply)."""
    for key in keys:
        value = mapping.get(key)
        if value is not None:
            found = _str(value)
            if found:
                return found
    return None


_MODEL_KEYS = ("model", "model_name", "model_id", "deployment_name", "azure_deployment")
_RESULT_MODEL_KEYS = ("model_name", "model")
_REQUEST_ID_KEYS = ("request_id", "id")


def _model_from_start(params: Mapping[str, Any], meta: Mapping[str, Any]) -> str | None:
    return _first_str(params, _MODEL_KEYS) or _str(meta.get("ls_model_name"))


def _serialized_info(serialized: Mapping[str, Any] | None) -> tuple[str | None, str | None]:
    """The class name and the configured base URL a serialized model names (memoized)."""
    if type(serialized) is not dict:
        return _class_name(serialized), _kwargs_base_url(serialized)
    # Keyed by identity (LangChain hands over the same cached dict for every call of one
    # model); the entry keeps the dict alive, so its id cannot be reused by another.
    found = _SERIALIZED.get(id(serialized))
    if found is not None and found[0] is serialized:
        return found[1], found[2]
    info = _class_name(serialized), _kwargs_base_url(serialized)
    if len(_SERIALIZED) >= _MEMO_SIZE:
        _SERIALIZED.clear()
    _SERIALIZED[id(serialized)] = (serialized, *info)
    return info


_SERIALIZED: dict[int, tuple[Mapping[str, Any], str | None, str | None]] = {}


def _provider(
    serialized: Mapping[str, Any] | None,
    ls_provider: str | None,
    model: str | None,
    base_url: str | None,
    key: tuple[int, str | None, str | None, str | None],
) -> str | None:
    """The provider of a call from what its start says (memoized by ``_open`` under ``key``)."""
    class_name, serialized_url = _serialized_info(serialized)
    provider = infer_provider(
        ls_provider=ls_provider,
        model=model,
        base_url=base_url or serialized_url,
        class_name=class_name,
    )
    if type(serialized) is dict:
        if len(_PROVIDERS) >= _MEMO_SIZE:
            _PROVIDERS.clear()
        _PROVIDERS[key] = (serialized, provider)
    return provider


# (id of the serialized model, ls_provider, model, base URL) -> (that dict, provider)
_PROVIDERS: dict[tuple[int, str | None, str | None, str | None], tuple[Any, str | None]] = {}


def _class_name(serialized: Mapping[str, Any] | None) -> str | None:
    if not serialized:
        return None
    ident = serialized.get("id")
    if isinstance(ident, Sequence) and ident and not isinstance(ident, str):
        return _str(ident[-1])
    return _str(serialized.get("name"))


_BASE_URL_KEYS = ("base_url", "openai_api_base", "api_base", "anthropic_api_url", "endpoint")


def _params_base_url(params: Mapping[str, Any]) -> str | None:
    if type(params) is dict and params.keys().isdisjoint(_BASE_URL_KEYS):
        return None  # the usual case, decided in one C call
    for key in _BASE_URL_KEYS:
        found = params.get(key)
        if isinstance(found, str) and found:
            return found
    return None


def _kwargs_base_url(serialized: Mapping[str, Any] | None) -> str | None:
    kwargs = (serialized or {}).get("kwargs")
    if isinstance(kwargs, Mapping):
        for key in _BASE_URL_KEYS:
            found = kwargs.get(key)
            if isinstance(found, str) and found:
                return found
    return None


def _attribution_from(meta: Mapping[str, Any], tags: Sequence[str] | None) -> Attribution:
    clean = tuple(t for t in tags if _user_tag(t)) if tags else ()
    if not clean and "user_id" not in meta and "session_id" not in meta and "operation" not in meta:
        return _EMPTY  # the common case: nothing to build
    values = [_str(meta.get(k)) for k in _ATTRIBUTION_KEYS]
    if not clean and not any(values):
        return _EMPTY
    return Attribution(values[0], values[1], values[2], clean)


def _user_tag(tag: str) -> bool:
    """Not one of the tags LangChain/LangGraph add on their own (memoized: tags repeat)."""
    keep = _USER_TAG.get(tag)
    if keep is None:
        keep = not _NOISE_TAG.match(tag)
        if len(_USER_TAG) >= _MEMO_SIZE:
            _USER_TAG.clear()
        _USER_TAG[tag] = keep
    return keep


_USER_TAG: dict[str, bool] = {}


_EMPTY = Attribution()


def _user_metadata(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The scalar metadata the user set (LangChain's and LangGraph's plumbing left out)."""
    # The same keys come on every call of a model or graph node: which of them are the
    # user's is decided once per set of keys.
    keys = tuple(meta)
    kept = _KEPT_KEYS.get(keys)
    if kept is None:
        kept = tuple(k for k in keys if k not in _ATTRIBUTION_KEYS and not _NOISE_META.match(k))
        if len(_KEPT_KEYS) >= _MEMO_SIZE:
            _KEPT_KEYS.clear()
        _KEPT_KEYS[keys] = kept
    out: dict[str, Any] = {}
    if not kept:
        return out  # a new dict all the same: a record's metadata is the user's to change
    for key in kept:
        value = meta[key]
        if value is None or isinstance(value, (str, int, float, bool)):
            out[key] = value
    return out


_KEPT_KEYS: dict[tuple[Any, ...], tuple[Any, ...]] = {}


def _max_tokens(params: Mapping[str, Any]) -> int | None:
    for key in ("max_tokens", "max_completion_tokens", "max_output_tokens", "num_predict"):
        value = params.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for part in content or ():
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, Mapping):
            text = part.get("text")
            if isinstance(text, str):
                parts.append(text)
    return "".join(parts)


def _as_dicts(messages: Any, chat: bool) -> list[dict[str, Any]]:
    """LangChain messages (or prompt strings) as ``{"role", "content"}`` dicts."""
    if not chat:
        return [{"role": "user", "content": str(p)} for p in messages or ()]
    out: list[dict[str, Any]] = []
    for m in messages or ():
        role = _ROLES.get(getattr(m, "type", ""), getattr(m, "type", "user"))
        if role == "chat":
            role = getattr(m, "role", "user")
        item: dict[str, Any] = {"role": role, "content": getattr(m, "content", "")}
        tool_calls = getattr(m, "tool_calls", None)
        if tool_calls:
            extra = json.dumps(
                [{"name": t.get("name"), "args": t.get("args")} for t in tool_calls], default=str
            )
            item["content"] = _content_text(item["content"]) + extra
        name = getattr(m, "name", None)
        if name:
            item["name"] = name
        out.append(item)
    return out
