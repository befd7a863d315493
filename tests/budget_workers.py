"""Child-process bodies and a worst-case chat model for the cross-process budget tests.

:class:`WorstCaseChat` is a LangChain chat model that bills exactly what the guard
reserves (the prompt as the guard counts it and a reply of ``max_tokens``, or of the
model's maximum output when no ``max_tokens`` is set), so any overshoot shows, and that
writes one line per request that reached it (the "provider"). :func:`spend_in_threads`
runs in a child process: a tracker with a shared budget on one DuckDB file, several
threads calling the model until the budget refuses.

Nothing here imports pytest.
"""

from __future__ import annotations

import os
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from tokentrail import BudgetExceededError, Tracker
from tokentrail.estimate import count_message_tokens

__all__ = ["MODEL", "WorstCaseChat", "append_line", "spend_in_threads"]

MODEL = "gpt-4o-mini"


def append_line(path: str | Path, text: str) -> None:
    """Append one line with a single unbuffered write (whole lines across processes)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, (text + "\n").encode())
    finally:
        os.close(fd)


class WorstCaseChat(BaseChatModel):
    """Bills the reserved worst case; every request that reaches it is written to ``sent``."""

    model_name: str = MODEL
    #: The model the response names (an unknown one tests unpriced responses).
    response_model: str = MODEL
    max_tokens: int | None = 40
    #: Reply tokens billed when ``max_tokens`` is None (the model's maximum output).
    unbounded_reply: int = 16_384
    sent: str | None = None
    delay: float = 0.0

    @property
    def _llm_type(self) -> str:
        return "worst-case-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"model_name": self.model_name}
        if self.max_tokens is not None:
            params["max_tokens"] = self.max_tokens
        return params

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "openai"
        params["ls_model_name"] = self.model_name
        if self.max_tokens is not None:
            params["ls_max_tokens"] = self.max_tokens
        return params

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.sent is not None:
            append_line(self.sent, "sent")
        if self.delay:
            time.sleep(self.delay)
        payload = [{"role": "user", "content": str(m.content)} for m in messages]
        inp = count_message_tokens(payload, model=self.model_name)
        out = self.max_tokens if self.max_tokens is not None else self.unbounded_reply
        message = AIMessage(
            content="ok",
            usage_metadata={"input_tokens": inp, "output_tokens": out, "total_tokens": inp + out},
            response_metadata={"model_name": self.response_model, "finish_reason": "stop"},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


def spend_in_threads(
    db: str,
    out_dir: str,
    tag: str,
    threads: int,
    calls: int,
    limit: str,
    start_at: float,
    delay: float = 0.0,
    store_close_timeout: float = 30.0,
) -> None:
    """Call :class:`WorstCaseChat` ``calls`` times on each of ``threads`` threads under a
    shared global daily USD budget of ``limit``; write ``ok``/``refused``/``error`` lines.

    Files in ``out_dir``: ``sent`` (one line per request that reached the model),
    ``outcomes`` (one line per call), ``alerts`` (one line per threshold fired, with the
    process tag), ``latency`` (each call's seconds, the model's own delay left out).
    """
    out = Path(out_dir)
    tracker = Tracker(db)
    tracker.budget(
        usd=Decimal(limit),
        per="day",
        scope="global",
        warn_at=(0.5, 0.75, 0.9),
        on_warn=lambda s: append_line(out / "alerts", f"{tag} {s.percent:.4f}"),
    )
    model = WorstCaseChat(sent=str(out / "sent"), delay=delay)
    handler = tracker.langchain(user_id=tag)
    latencies: list[float] = []

    def worker(t: int) -> None:
        for i in range(calls):
            began = time.perf_counter()
            try:
                model.invoke(
                    [HumanMessage(f"{tag} thread {t} call {i}")], config={"callbacks": [handler]}
                )
            except BudgetExceededError:
                append_line(out / "outcomes", "refused")
            except Exception as exc:  # reported, and the test fails on it
                append_line(out / "outcomes", f"error {exc!r}".replace("\n", " "))
            else:
                append_line(out / "outcomes", "ok")
            latencies.append(time.perf_counter() - began - delay)

    time.sleep(max(0.0, start_at - time.time()))  # every process starts at once
    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    append_line(out / "latency", "\n".join(f"{x:.6f}" for x in latencies))
    tracker.store.close(store_close_timeout)


def process_context() -> Any:
    """A ``forkserver`` multiprocessing context that preloads this module."""
    import multiprocessing

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["tests.budget_workers"])
    return ctx


def worst_case(prompt: str, reply: int) -> Decimal:
    """The guard's worst case for one ``prompt`` and ``reply`` tokens of the model, in USD."""
    from tokentrail.pricing import cost

    tokens = count_message_tokens([{"role": "user", "content": prompt}], MODEL)
    priced = cost(MODEL, provider="openai", input_tokens=tokens, output_tokens=reply)
    assert priced is not None
    return priced.total


def lines_of(path: Path) -> list[str]:
    """The lines of a file the workers append to (none when it does not exist yet)."""
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []
