"""``TokentrailCallbackHandler``: LangChain callback events in, one usage record per call out.

* ``on_chat_model_start`` / ``on_llm_start`` (in the caller's context) open a call: model,
  provider, attribution (LangChain ``metadata`` keys ``user_id``/``session_id``/``operation``
  and ``tags`` > handler arguments > ``track()`` blocks > tracker defaults) and the budget
  pre-flight, which may raise :class:`~tokentrail.BudgetExceededError`, on purpose.
* ``on_llm_new_token`` remembers the streamed text (for streams that report no usage) and,
  while a live counter watches, reports each piece to the tracker as it arrives.
* ``on_llm_end`` / ``on_llm_error`` close it: one record (see ``results``) handed to the
  tracker's ``capture``. A stream the consumer abandons (``GeneratorExit``, task
  cancellation, ``KeyboardInterrupt``) is ``status="cancelled"``.
* Chain, tool and retriever events only keep each run's root, for the trace id.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from ...context import Attribution, CallContext, active_runs
from ...errors import BudgetExceededError
from ...records import Status, UsageRecord
from .calls import Call, Calls, calls_of, every_registry
from .messages import content_text
from .quiet import install as _quiet_refusal_lines
from .results import bare_record, record_of
from .starts import (
    NO_ATTRIBUTION,
    attribution_from,
    base_url_of,
    model_of,
    preflight_request,
    provider_of,
    user_metadata,
)

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage
    from langchain_core.outputs import LLMResult

    from ...budget import Reservation
    from ...protocols import CaptureTarget

__all__ = ["TokentrailCallbackHandler"]

logger = logging.getLogger("tokentrail")

_quiet_refusal_lines()

_CANCELLED = (GeneratorExit, asyncio.CancelledError, KeyboardInterrupt)
_NOTHING: Mapping[str, Any] = {}


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

    def __init__(self, tracker: CaptureTarget, attribution: Attribution | None = None) -> None:
        super().__init__()
        self.tracker = tracker
        self.attribution = attribution if attribution is not None else Attribution()
        self._calls = calls_of(tracker)
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
        prompt = messages[0] if messages else []
        self._start(serialized, prompt, True, run_id, parent_run_id, tags, metadata, kwargs)

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
        batch = kwargs.get("invocation_params")
        try:
            call = self._open(
                serialized, messages, chat, run_id, parent_run_id, tags, metadata, batch
            )
        except BudgetExceededError:
            # The whole batch is abandoned before any request leaves: give back what its
            # earlier prompts reserved (they will get no end event).
            self._drop_batch(run_id, batch)
            raise  # refused before the request leaves: the one error meant for the caller
        except Exception:
            logger.exception("tokentrail: could not read a LangChain model start")
            return
        if table.setdefault(run_id, call) is not call:  # another thread's handler was first
            self.tracker.release(call.reservation)
            return
        self._watch(run_id, call)

    def _open(
        self,
        serialized: Mapping[str, Any] | None,
        messages: Any,
        chat: bool,
        run_id: UUID,
        parent_run_id: UUID | None,
        tags: list[str] | None,
        metadata: Mapping[str, Any] | None,
        batch: Any,
    ) -> Call:
        """The call a start event opens (the budget pre-flight included)."""
        meta = metadata or _NOTHING
        params = batch or _NOTHING
        model = model_of(params, meta)
        provider = provider_of(serialized, meta, model, base_url_of(params))
        context = self._context(meta, tags)
        if not chat:  # a text-completion LLM (on_llm_start)
            context = context.with_default_operation("text_completion")
        run, parent, trace = self._run_ids(run_id, parent_run_id)
        reservation = None
        if self.tracker.guarded:  # no budget: nothing to reserve, no request to build
            request = preflight_request(model, provider, messages, chat, params, context, run)
            reservation = self._preflight(request)
        return Call(
            model=model,
            provider=provider,
            ts=datetime.now(timezone.utc),
            t0=time.perf_counter(),
            context=context,
            reservation=reservation,
            run_id=run,
            parent_run_id=parent,
            trace_id=trace,
            metadata=user_metadata(meta),
            messages=messages,
            chat=chat,
            batch=batch,
        )

    def _context(self, meta: Mapping[str, Any], tags: list[str] | None) -> CallContext:
        """The call's attribution: its own > this handler's > track() blocks > defaults."""
        from_call = attribution_from(meta, tags)
        if from_call is NO_ATTRIBUTION and not active_runs():
            # The common case: nothing call-specific and no track() block, so the context
            # is the handler's own, the same for every call.
            defaults = self.tracker.defaults
            own = self.attribution  # public: a user may replace it between calls
            cached = self._context_cache
            if cached is None or cached[0] is not defaults or cached[1] is not own:
                cached = self._context_cache = (defaults, own, self.tracker.call_context(own))
            return cached[2]
        if from_call is NO_ATTRIBUTION:
            return self.tracker.call_context(self.attribution)
        return self.tracker.call_context(from_call.over(self.attribution))

    def _run_ids(self, run_id: UUID, parent_run_id: UUID | None) -> tuple[str, str | None, str]:
        """(run id, parent run id, trace id) as stored."""
        run = str(run_id)
        if parent_run_id is None:
            return run, None, run  # a root run is its own trace
        parent = str(parent_run_id)
        root = self._calls.root_of(run_id, parent_run_id)
        # The root is most often the parent itself (a model called by a chain).
        return run, parent, parent if root is parent_run_id else str(root)

    def _preflight(self, request: Any) -> Reservation | None:
        try:
            return self.tracker.preflight(request)
        except BudgetExceededError:
            raise  # the one error tokentrail raises on purpose
        except Exception:
            logger.exception("tokentrail: the budget pre-flight failed; the call goes ahead")
            return None

    def _watch(self, run_id: UUID, call: Call) -> None:
        """Close the call when its asyncio task ends without an end event.

        An async caller cancelled while LangChain awaits the request gets no end event
        (agenerate's gather is cancelled with it).
        """
        try:
            task = asyncio.current_task()
        except RuntimeError:  # no running event loop: a sync caller
            return
        if task is not None:
            callback = functools.partial(self._task_done, run_id)
            task.add_done_callback(callback)
            call.watch = (task, callback)

    def _task_done(self, run_id: UUID, task: asyncio.Task[Any]) -> None:
        call = self._pop(run_id)
        if call is None:
            return  # the call ended normally
        try:
            record = record_of(call, None, "cancelled", None)
            record.error_type = "CancelledError" if task.cancelled() else "NoEndEvent"
        except Exception:
            logger.exception("tokentrail: could not record a cancelled LangChain call")
            record = bare_record(call, "cancelled")
        self._capture(record, call)

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
        """Remember what was streamed (for cancelled streams and streams without usage);
        report it to a live counter, if one watches."""
        call = self._calls.calls.get(run_id)
        if call is None:
            return
        # Two handlers of one tracker get the same chunk object: count it once.
        marker = chunk if chunk is not None else token
        if marker is call.last_chunk and marker is not None:
            return
        call.last_chunk = marker
        if call.texts is None:
            call.texts = []
        piece = token if isinstance(token, str) else content_text(token)  # or content parts
        if piece or not isinstance(token, str):
            call.texts.append(piece)
        if piece and self.tracker.watching_streams:  # a live counter follows the stream
            self.tracker.streamed(call.run_id, piece, call.model)

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
        call = self._pop(run_id)
        if call is None:
            return
        try:
            record = record_of(call, response, "ok", None)
        except Exception:
            logger.exception("tokentrail: could not read a LangChain model result")
            record = bare_record(call, "ok")
        self._capture(record, call)

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
            record = record_of(call, kwargs.get("response"), status, error)
        except Exception:
            logger.exception("tokentrail: could not read a failed LangChain model call")
            record = bare_record(call, status)
        record.error_type = type(error).__name__
        self._capture(record, call)

    def _pop(self, run_id: UUID, calls: Calls | None = None) -> Call | None:
        call = (self._calls if calls is None else calls).calls.pop(run_id, None)
        if call is not None and call.watch is not None:
            _unwatch(call)
        return call

    def _capture(self, record: UsageRecord, call: Call) -> None:
        try:
            self.tracker.capture(record, context=call.context, reservation=call.reservation)
        except Exception:  # capture never raises; belt and braces
            logger.exception("tokentrail: could not capture a LangChain model call")

    def _drop_batch(self, run_id: UUID, params: Any) -> None:
        """Forget the calls of a refused batch (and this run in other trackers), unsent."""
        for tracker, calls in every_registry():
            # A copy (one atomic dict operation): other threads may start calls meanwhile.
            doomed = [
                rid
                for rid, c in calls.calls.copy().items()
                if rid == run_id or (params is not None and c.batch is params)
            ]
            for rid in doomed:
                call = self._pop(rid, calls)
                if call is not None:
                    tracker.release(call.reservation)

    # ------------------------------------------------------------------ trace roots
    def _open_parent(self, run_id: UUID, parent_run_id: UUID | None) -> None:
        calls = self._calls
        if run_id not in calls.roots:
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


def _unwatch(call: Call) -> None:
    """Remove the call's done-callback from its task (a call that ended normally)."""
    watch = call.watch
    call.watch = None
    if watch is None:
        return
    task, callback = watch
    # A long-lived task (a server's connection handler) makes many calls: do not let
    # their callbacks pile up. Only the task's own loop thread may touch it.
    try:
        if asyncio.get_running_loop() is task.get_loop():
            task.remove_done_callback(callback)
    except RuntimeError:
        pass
