"""The live counter: terminal line, summary line, notebook display, throttling."""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

import pytest

from tokentrail.live import LiveCounter, format_counter


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_format_matches_the_familiar_line() -> None:
    assert (
        format_counter(12_450, Decimal("0.2301"), rising=True) == "Tokens: 12,450 ↑ | Cost: $0.23"
    )
    assert format_counter(900, Decimal("0.00021")) == "Tokens: 900 | Cost: $0.0002"
    assert format_counter(0, Decimal(0), unpriced=2) == "Tokens: 0 | Cost: $0.00 (+2 unpriced)"


def test_terminal_line_refreshes_in_place(tracker: Any) -> None:
    out = _Tty()
    counter = tracker.live(stream=out, interval=0)
    assert counter.mode == "terminal"
    tracker.record(model="gpt-4o-mini", usage={"input_tokens": 10_000, "output_tokens": 2_000})
    tracker.record(model="gpt-4o-mini", usage={"input_tokens": 400, "output_tokens": 50})
    counter.stop()
    text = out.getvalue()
    # 10,400 x $0.15 + 2,050 x $0.60 per 1M = $0.00279
    assert "\rTokens: 12,000 ↑ | Cost: $0.0027" in text  # after the first call: $0.0027 exactly
    assert text.endswith("\rTokens: 12,450 | Cost: $0.0028\x1b[K\n")
    assert "\n" not in text[:-1]  # one line, redrawn with carriage returns
    assert (counter.calls, counter.tokens, counter.cost) == (2, 12_450, Decimal("0.002790"))


def test_not_a_tty_prints_one_summary_line(tracker: Any) -> None:
    out = io.StringIO()
    with tracker.live(stream=out) as counter:
        tracker.record(model="gpt-4o-mini", usage={"input_tokens": 1000, "output_tokens": 100})
        assert out.getvalue() == ""
    assert counter.mode == "summary"
    assert out.getvalue() == "Tokens: 1,100 | Cost: $0.0002\n"


def test_counts_only_calls_after_start_and_until_stop(tracker: Any) -> None:
    tracker.record(model="gpt-4o-mini", usage={"input_tokens": 5})
    counter = tracker.live(mode="off")
    tracker.record(model="unknown-model-xyz", usage={"input_tokens": 7})
    counter.stop()
    tracker.record(model="gpt-4o-mini", usage={"input_tokens": 5})
    assert (counter.calls, counter.tokens, counter.unpriced) == (1, 7, 1)
    assert counter.text == "Tokens: 7 | Cost: $0.00 (+1 unpriced)"


def test_throttle_draws_a_burst_once(tracker: Any) -> None:
    out = _Tty()
    counter = LiveCounter(tracker, stream=out, interval=60).start()
    for _ in range(50):
        tracker.record(model="gpt-4o-mini", usage={"input_tokens": 100})
    assert out.getvalue().count("\r") == 1  # the initial draw only: the burst is throttled
    counter.stop()
    assert out.getvalue().count("\r") == 2
    assert "Tokens: 5,000" in out.getvalue()


def test_notebook_display_is_updated(tracker: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import IPython.display

    shown: list[str] = []

    class Handle:
        def update(self, obj: Any) -> None:
            shown.append("update:" + repr(obj))

    def display(obj: Any, display_id: bool = False) -> Handle:
        assert display_id is True
        shown.append("display:" + repr(obj))
        assert "<code" in obj._repr_html_()
        return Handle()

    monkeypatch.setattr(IPython.display, "display", display)
    counter = tracker.live(mode="notebook", interval=0)
    tracker.record(model="gpt-4o-mini", usage={"input_tokens": 1000, "output_tokens": 100})
    counter.stop()
    assert shown[0] == "display:Tokens: 0 | Cost: $0.00"
    assert shown[1] == "update:Tokens: 1,100 ↑ | Cost: $0.0002"
    assert shown[-1] == "update:Tokens: 1,100 | Cost: $0.0002"


def test_live_counts_langchain_calls(tracker: Any, wire_server: Any, chat_openai: Any) -> None:
    out = io.StringIO()
    wire_server.set_default(input_tokens=1000, output_tokens=100)
    llm = chat_openai()  # LangChain imported before the block, as in an app
    with tracker.live(stream=out), tracker.track():
        llm.invoke("a")
        llm.invoke("b")
    assert out.getvalue() == "Tokens: 2,200 | Cost: $0.0004\n"  # 2 x $0.00021
