"""LlamaIndex integration: one priced row per provider call made through LlamaIndex.

Two ways in, sharing one recorder per tracker so that a call is never counted twice:

* **Instrumentation** (``tracker.llamaindex(...)`` → :class:`LlamaIndexInstrumentation`, and
  every ``tracker.track()`` block): an event handler and a span handler on the root
  dispatcher of ``llama_index.core.instrumentation``. They see every LLM and embedding call
  of the process — ``chat``/``complete``, streaming, async, query and chat engines, agents.
* **Legacy callbacks** (:class:`TokentrailLlamaIndexCallback`, for ``Settings.callback_manager``
  or one LLM's ``callback_manager``; :func:`guard_llm` installs it on an LLM).

What gets recorded: usage from the provider's raw response (cached, reasoning and Anthropic
cache-write tokens included), the model the provider says served the call, the provider
inferred from the LLM's endpoint and class; a streamed call's usage from its last chunk
(``OpenAI(..., additional_kwargs={"stream_options": {"include_usage": True}})``), else an
estimate marked ``estimated``; a stream the consumer abandons is ``cancelled``. A ``chat()``
that falls back to ``complete()`` (or the reverse) is one row: the inner call records.
Embedding batches are rows with ``operation="embedding"`` and estimated input tokens
(LlamaIndex does not pass the provider's embedding usage on).

Attribution, most specific first: LlamaIndex ``instrument_tags`` on the call (``user_id``,
``session_id``, ``operation``, ``tags``; other keys go to metadata), the handle's arguments,
the innermost ``tracker.track()`` block, the tracker's defaults.

**Which path stops a call over budget.** The instrumentation dispatcher swallows every
exception its handlers raise, so the instrumentation handlers *reserve* the budget at the
start event but cannot refuse. The legacy ``CallbackManager`` lets a start handler's
exception propagate before the request is sent, so :class:`TokentrailLlamaIndexCallback` is
the path that raises ``BudgetExceededError``. ``tracker.llamaindex()`` on a tracker with a
budget puts it in ``Settings.callback_manager`` itself, so LLMs created afterwards (and
those created without handlers of their own while a Settings manager existed, which share
its handler list) are stopped with no extra step; for an LLM made earlier with its own
manager, call ``handle.guard(llm)`` (``guard_llm(llm, tracker)``). When
both paths see a call, the callback raises the refusal taken at the start event; a refused
call is never recorded. Without the callback an over-budget call goes through, is recorded,
and a warning says how to stop the next one.

Capturing never raises into the app; only the guard raises, on purpose.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from llama_index.core.callbacks import CallbackManager, CBEventType, EventPayload
from llama_index.core.callbacks.base_handler import BaseCallbackHandler
from llama_index.core.instrumentation.span import active_span_id
from llama_index_instrumentation.dispatcher import active_instrument_tags

from ..context import Attribution, CallContext, Run
from ..errors import BudgetExceededError
from ..protocols import CaptureTarget
from .llamaindex_handlers import HUB
from .llamaindex_recorder import Recorder

__all__ = [
    "LlamaIndexInstrumentation",
    "TokentrailLlamaIndexCallback",
    "enter_track",
    "exit_track",
    "guard_llm",
]

logger = logging.getLogger("tokentrail")

_LLM = TypeVar("_LLM")


class LlamaIndexInstrumentation:
    """A tracker's instrumentation of LlamaIndex; ``detach()`` (or leaving ``with``) ends it.

    Example::

        handle = tracker.llamaindex(user_id="u1", operation="rag")
        index.as_query_engine().query("...")      # every LLM/embedding call is a row
        handle.detach()

    When a tracker is attached several times, the most recent handle's attribution applies;
    each call is still recorded once.
    """

    def __init__(self, tracker: CaptureTarget, attribution: Attribution | None = None) -> None:
        self.tracker = tracker
        self.attribution = attribution if attribution is not None else Attribution()
        self._recorder: Recorder | None = None
        #: The refusing callback this handle put in ``Settings.callback_manager``, if any.
        self._settings_guard: TokentrailLlamaIndexCallback | None = None
        #: (tracker defaults, context) for calls with no run and no tags: reused.
        self.context_cache: tuple[Attribution, CallContext] | None = None

    @classmethod
    def attach(
        cls, tracker: CaptureTarget, attribution: Attribution | None = None
    ) -> LlamaIndexInstrumentation:
        """Start recording every LlamaIndex call of the process into ``tracker``."""
        handle = cls(tracker, attribution)
        try:
            with HUB.lock:
                rec = HUB.recorder(tracker)
                rec.handles.append(handle)
                handle._recorder = rec
        except Exception:
            logger.exception("tokentrail: could not instrument LlamaIndex")
        if tracker.guarded:
            handle._guard_settings()
        return handle

    def _guard_settings(self) -> None:
        """Put a refusing callback in ``Settings.callback_manager`` (budgets need one)."""
        try:
            from llama_index.core import Settings

            handlers = Settings.callback_manager.handlers
            if any(
                isinstance(h, TokentrailLlamaIndexCallback) and h.tracker is self.tracker
                for h in handlers
            ):
                return  # another handle (or the user) already put one there
            self._settings_guard = self.callback_handler()
            handlers.append(self._settings_guard)
        except Exception:
            logger.exception("tokentrail: could not add the budget guard to LlamaIndex Settings")

    @property
    def attached(self) -> bool:
        """True until :meth:`detach`."""
        return self._recorder is not None

    def detach(self) -> None:
        """Stop recording (calls already started still finish into rows). Idempotent."""
        rec = self._recorder
        if rec is None:
            return
        self._recorder = None
        self._unguard_settings()
        try:
            with HUB.lock:
                rec.handles = [h for h in rec.handles if h is not self]
            HUB.settle_idle(rec)
        except Exception:
            logger.exception("tokentrail: could not detach from LlamaIndex")

    def _unguard_settings(self) -> None:
        guard, self._settings_guard = self._settings_guard, None
        if guard is None:
            return
        try:
            from llama_index.core import Settings

            handlers = Settings.callback_manager.handlers
            if guard in handlers:
                handlers.remove(guard)
        except Exception:
            logger.exception("tokentrail: could not remove the budget guard from LlamaIndex")

    def callback_handler(self) -> TokentrailLlamaIndexCallback:
        """A legacy callback handler with this handle's attribution (it stops over-budget calls)."""
        return TokentrailLlamaIndexCallback(self.tracker, self.attribution)

    def guard(self, llm: _LLM) -> _LLM:
        """Make ``llm`` raise ``BudgetExceededError`` before an over-budget request; returns it."""
        return guard_llm(llm, self.tracker, attribution=self.attribution)

    def __enter__(self) -> LlamaIndexInstrumentation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.detach()

    def __repr__(self) -> str:
        state = "attached" if self.attached else "detached"
        return f"<LlamaIndexInstrumentation {state} tracker={self.tracker!r}>"


def _release_callback(rec: Recorder) -> None:
    with HUB.lock:
        rec.callbacks = max(0, rec.callbacks - 1)
    HUB.settle_idle(rec)


class TokentrailLlamaIndexCallback(BaseCallbackHandler):
    """Legacy ``CallbackManager`` handler: records LLM and embedding calls and guards budgets.

    Its LLM start event raises ``BudgetExceededError`` when the call could exceed a budget,
    before the request is sent (the ``CallbackManager`` propagates start-handler errors)::

        from llama_index.core import Settings
        from llama_index.core.callbacks import CallbackManager
        Settings.callback_manager = CallbackManager([TokentrailLlamaIndexCallback(tracker)])

    LLMs created before ``Settings.callback_manager`` is set keep their own manager: use
    :func:`guard_llm` for those. Calls the instrumentation already records are not recorded
    twice. While a handler is alive, tokentrail's span handler stays on the LlamaIndex
    dispatcher: it tells a ``chat()``→``complete()`` fallback from two calls.
    """

    def __init__(
        self,
        tracker: CaptureTarget,
        attribution: Attribution | None = None,
        *,
        user_id: str | None = None,
        session_id: str | None = None,
        operation: str | None = None,
        tags: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(event_starts_to_ignore=[], event_ends_to_ignore=[])
        own = Attribution.of(user_id, session_id, operation, tags, metadata)
        self.tracker = tracker
        self.attribution = own.over(attribution) if attribution is not None else own
        with HUB.lock:
            rec = HUB.recorder(tracker)
            rec.callbacks += 1
        self._recorder = rec
        weakref.finalize(self, _release_callback, rec)

    def on_event_start(
        self,
        event_type: CBEventType,
        payload: dict[str, Any] | None = None,
        event_id: str = "",
        parent_id: str = "",
        **kwargs: Any,
    ) -> str:
        """Start recording an LLM or embedding call; raise if it would exceed a budget."""
        try:
            if event_type is CBEventType.LLM:
                self._start_llm(payload or {}, event_id)
            elif event_type is CBEventType.EMBEDDING:
                self._start_embedding(payload or {}, event_id)
        except BudgetExceededError:
            raise
        except Exception:
            logger.exception("tokentrail: LlamaIndex callback failed at a start event")
        return event_id

    def _start_llm(self, payload: Mapping[str, Any], event_id: str) -> None:
        rec = self._recorder
        span = active_span_id.get()
        if rec.link_callback(span, event_id) is not None:
            return
        messages = payload.get(EventPayload.MESSAGES)
        call = rec.start_llm(
            span,
            "chat" if messages is not None else "completion",
            payload.get(EventPayload.SERIALIZED),
            messages=messages,
            prompt=payload.get(EventPayload.PROMPT),
            kwargs=payload.get(EventPayload.ADDITIONAL_KWARGS),
            tags=active_instrument_tags.get(),
            source="callback",
            attribution=self.attribution,
        )
        if call is not None and call.source == "callback":
            rec.by_event[event_id] = call
            call.event_id = event_id

    def _start_embedding(self, payload: Mapping[str, Any], event_id: str) -> None:
        rec = self._recorder
        span = active_span_id.get()
        if rec.link_embedding(span, event_id) is not None:
            return
        call = rec.start_embedding(
            span,
            payload.get(EventPayload.SERIALIZED),
            tags=active_instrument_tags.get(),
            source="callback",
            attribution=self.attribution,
        )
        if call is not None:
            rec.by_event[event_id] = call
            call.event_id = event_id

    def on_event_end(
        self,
        event_type: CBEventType,
        payload: dict[str, Any] | None = None,
        event_id: str = "",
        **kwargs: Any,
    ) -> None:
        """Finish a call this handler started (never raises)."""
        if event_type is not CBEventType.LLM and event_type is not CBEventType.EMBEDDING:
            return
        try:
            payload = payload or {}
            exc = payload.get(EventPayload.EXCEPTION)
            if event_type is CBEventType.EMBEDDING:
                result: Any = payload.get(EventPayload.CHUNKS)
            else:
                result = payload.get(EventPayload.RESPONSE, payload.get(EventPayload.COMPLETION))
            self._recorder.end_event(
                event_id, result, exc if isinstance(exc, BaseException) else None
            )
        except Exception:
            logger.exception("tokentrail: LlamaIndex callback failed at an end event")

    def start_trace(self, trace_id: str | None = None) -> None:
        """Traces are not used."""

    def end_trace(
        self, trace_id: str | None = None, trace_map: dict[str, list[str]] | None = None
    ) -> None:
        """Traces are not used."""


def guard_llm(
    llm: _LLM,
    tracker: CaptureTarget,
    *,
    attribution: Attribution | None = None,
    user_id: str | None = None,
    session_id: str | None = None,
    operation: str | None = None,
    tags: Sequence[str] | None = None,
) -> _LLM:
    """Give ``llm`` its own callback manager with a :class:`TokentrailLlamaIndexCallback`.

    The LLM then raises ``BudgetExceededError`` before sending a request that could exceed
    one of ``tracker``'s budgets, and its calls are recorded (once, also when the
    instrumentation is attached). Other handlers of its manager are kept. Returns ``llm``.
    """
    try:
        handler = TokentrailLlamaIndexCallback(
            tracker,
            attribution,
            user_id=user_id,
            session_id=session_id,
            operation=operation,
            tags=tags,
        )
        current = getattr(llm, "callback_manager", None)
        handlers = [
            h
            for h in (getattr(current, "handlers", None) or [])
            if not (isinstance(h, TokentrailLlamaIndexCallback) and h.tracker is tracker)
        ]
        # A new manager: LLM managers may share their handler list with Settings'.
        llm.callback_manager = CallbackManager([*handlers, handler])  # type: ignore[attr-defined]
    except Exception:
        logger.exception("tokentrail: could not guard a LlamaIndex LLM")
    return llm


def enter_track(tracker: CaptureTarget, run: Run) -> Recorder | None:
    """A ``tracker.track()`` block starts: record LlamaIndex calls started inside it.

    The instrumentation is installed for the block's duration (reference-counted per
    tracker); only calls whose start event runs inside an active run of ``tracker`` are
    recorded, unless a handle from ``tracker.llamaindex()`` records everything anyway.
    """
    try:
        with HUB.lock:
            rec = HUB.recorder(tracker)
            rec.track_depth += 1
        return rec
    except Exception:
        logger.exception("tokentrail: could not instrument LlamaIndex for a track() block")
        return None


def exit_track(tracker: CaptureTarget, run: Run, token: Recorder | None) -> None:
    """The ``track()`` block ends (its streams still in flight finish into rows)."""
    if token is None:
        return
    try:
        with HUB.lock:
            token.track_depth = max(0, token.track_depth - 1)
        HUB.settle_idle(token)
    except Exception:
        logger.exception("tokentrail: could not leave a track() block")
