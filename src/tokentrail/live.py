"""A running token and cost counter: ``Tokens: 12,450 ↑ | Cost: $0.23``.

``tracker.live()`` starts one; it counts every call the tracker captures from then on and
shows the totals as a single refreshed line on stderr in a terminal, or as an updating
output in a Jupyter notebook. Stop it with ``.stop()`` or use it as a context manager::

    with tracker.live():
        chain.invoke(inputs, config={"callbacks": [tracker.langchain()]})

Refreshes are throttled (``interval`` seconds) so a burst of calls costs one redraw.

A streamed call moves the counter while it streams: each piece of text the integrations
report adds its estimated output tokens (tiktoken for OpenAI models), and the call's record
replaces that estimate by the exact counts when the stream ends.
"""

from __future__ import annotations

import sys
import threading
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, TextIO

if TYPE_CHECKING:
    from .protocols import RecordSource
    from .records import UsageRecord

__all__ = ["LiveCounter", "format_counter"]

Mode = Literal["auto", "terminal", "notebook", "summary", "off"]


def format_counter(tokens: int, cost: Decimal, *, rising: bool = False, unpriced: int = 0) -> str:
    """The counter's text, e.g. ``Tokens: 12,450 ↑ | Cost: $0.23``.

    ``rising`` adds the arrow (tokens went up since the last redraw); costs under a cent
    keep four decimals so small runs do not read $0.00; ``unpriced`` calls are noted.
    """
    arrow = " ↑" if rising else ""
    money = f"${cost:,.2f}" if cost >= Decimal("0.01") or cost == 0 else f"${cost:,.4f}"
    note = f" (+{unpriced} unpriced)" if unpriced else ""
    return f"Tokens: {tokens:,}{arrow} | Cost: {money}{note}"


def _in_notebook() -> bool:
    ipython_mod = sys.modules.get("IPython")
    if ipython_mod is None:
        return False
    try:
        shell = ipython_mod.get_ipython()
    except Exception:
        return False
    return shell is not None and getattr(shell, "kernel", None) is not None


class LiveCounter:
    """Counts the calls a tracker captures and keeps a display of the totals up to date.

    ``mode``: ``"auto"`` (a notebook display under a Jupyter kernel, else a refreshed
    terminal line when ``stream`` — stderr by default — is a TTY, else ``"summary"``: one
    line at stop), ``"terminal"``, ``"notebook"``, ``"summary"`` or ``"off"`` (count only;
    read :attr:`text`).
    """

    def __init__(
        self,
        tracker: RecordSource,
        *,
        mode: Mode = "auto",
        stream: TextIO | None = None,
        interval: float = 0.2,
    ) -> None:
        self.tracker = tracker
        self.interval = interval
        self._stream = stream
        self._lock = threading.Lock()
        self.calls = 0
        self.tokens = 0
        self.cost = Decimal(0)
        self.unpriced = 0
        #: Estimated output tokens of the streams in flight, by run id (see the module docs).
        self._streaming: dict[str, int] = {}
        self._shown_tokens = 0
        self._dirty = False
        self._last_draw = 0.0
        self._unsubscribe: Any = None
        self._handle: Any = None
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        self.mode: Mode = self._resolve(mode)

    def _resolve(self, mode: Mode) -> Mode:
        if mode != "auto":
            return mode
        if _in_notebook():
            return "notebook"
        stream = self._stream if self._stream is not None else sys.stderr
        isatty = getattr(stream, "isatty", None)
        return "terminal" if isatty is not None and isatty() else "summary"

    # ------------------------------------------------------------------ counting
    def _on_record(self, record: UsageRecord) -> None:
        with self._lock:
            self.calls += 1
            self.tokens += record.usage.total_tokens
            if record.cost is None:
                self.unpriced += 1
            else:
                self.cost += record.cost.total
            if self._streaming and record.run_id is not None:
                self._streaming.pop(record.run_id, None)  # the exact counts replace it
            self._dirty = True
            due = time.monotonic() - self._last_draw >= self.interval
        if due:
            self.refresh()

    def _on_chunk(self, run_id: str, text: str, model: str | None) -> None:
        from .estimate import count_text_tokens

        tokens = count_text_tokens(text, model)
        with self._lock:
            self._streaming[run_id] = self._streaming.get(run_id, 0) + tokens
            self._dirty = True
            due = time.monotonic() - self._last_draw >= self.interval
        if due:
            self.refresh()

    @property
    def streaming_tokens(self) -> int:
        """Estimated output tokens of the streams still in flight."""
        with self._lock:
            return sum(self._streaming.values())

    @property
    def total_tokens(self) -> int:
        """The tokens shown: finished calls' exact counts plus the streams in flight."""
        with self._lock:
            return self.tokens + sum(self._streaming.values())

    @property
    def text(self) -> str:
        """The counter as shown now."""
        with self._lock:
            tokens = self.tokens + sum(self._streaming.values())
            return format_counter(
                tokens,
                self.cost,
                rising=tokens > self._shown_tokens,
                unpriced=self.unpriced,
            )

    # ------------------------------------------------------------------ drawing
    def refresh(self) -> None:
        """Redraw now (never raises)."""
        try:
            text = self.text
            with self._lock:
                self._shown_tokens = self.tokens + sum(self._streaming.values())
                self._dirty = False
                self._last_draw = time.monotonic()
            if self.mode == "terminal":
                stream = self._stream if self._stream is not None else sys.stderr
                stream.write("\r" + text + "\x1b[K")
                stream.flush()
            elif self.mode == "notebook":
                self._draw_notebook(text)
        except Exception:  # a display problem must never reach the user's calls
            import logging

            logging.getLogger("tokentrail").debug("live counter redraw failed", exc_info=True)

    def _draw_notebook(self, text: str) -> None:
        import IPython.display

        display: Any = IPython.display.display  # untyped in IPython
        if self._handle is None:
            self._handle = display(_Text(text), display_id=True)
        else:
            self._handle.update(_Text(text))

    def _tick(self) -> None:
        # Draw the last calls of a burst the throttle skipped.
        while not self._stop.wait(self.interval):
            if self._dirty:
                self.refresh()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> LiveCounter:
        """Subscribe to the tracker and draw the initial counter; returns ``self``."""
        if self._unsubscribe is None:
            self._unsubscribe = self.tracker.subscribe(self._on_record, self._on_chunk)
            if self.mode in ("terminal", "notebook"):
                self.refresh()
                self._timer = threading.Thread(
                    target=self._tick, name="tokentrail-live", daemon=True
                )
                self._timer.start()
        return self

    def stop(self) -> None:
        """Stop counting; draw the final totals (a newline ends the terminal line)."""
        if self._unsubscribe is None:
            return
        self._unsubscribe()
        self._unsubscribe = None
        self._stop.set()
        if self._timer is not None:
            self._timer.join(timeout=1.0)
        if self.mode == "off":
            return
        if self.mode == "summary":
            stream = self._stream if self._stream is not None else sys.stderr
            with self._lock:  # a final total: nothing is rising any more
                tokens = self.tokens + sum(self._streaming.values())
                line = format_counter(tokens, self.cost, unpriced=self.unpriced)
            stream.write(line + "\n")
            stream.flush()
            return
        self.refresh()
        if self.mode == "terminal":
            stream = self._stream if self._stream is not None else sys.stderr
            stream.write("\n")
            stream.flush()

    def __enter__(self) -> LiveCounter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<LiveCounter {self.text}>"

    def _repr_html_(self) -> str:
        return _Text(self.text)._repr_html_()


class _Text:
    """What the notebook display shows (HTML with a plain-text fallback)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        from html import escape

        return f"<code style='font-size:1.05em'>{escape(self.text)}</code>"
