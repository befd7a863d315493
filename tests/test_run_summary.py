"""The summary of a ``track()`` block: one line for logs, a block of lines for a person."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tokentrail.context import RunSummary


def summary(**changes: object) -> RunSummary:
    values: dict[str, object] = {
        "calls": 3,
        "input_tokens": 1000,
        "output_tokens": 234,
        "cache_read_tokens": 800,
        "reasoning_tokens": 50,
        "total_cost": Decimal("0.000412"),
        "unpriced_calls": 0,
        "errors": 1,
        "duration_s": 1.234,
    }
    values.update(changes)
    return RunSummary(**values)  # type: ignore[arg-type]


def test_the_block_people_know() -> None:
    assert summary().block().splitlines() == [
        "Session complete",
        "  Duration     1.2 s",
        "  Operations   3 calls (1 error)",
        "  Tokens       1,234 (1,000 in / 234 out; 800 cached, 50 reasoning)",
        "  Cost         $0.000412",
    ]


def test_the_block_leaves_out_what_did_not_happen_and_says_what_is_unpriced() -> None:
    lines = (
        summary(calls=1, errors=0, cache_read_tokens=0, reasoning_tokens=0, unpriced_calls=1)
        .block()
        .splitlines()
    )
    assert lines[2] == "  Operations   1 call"
    assert lines[3] == "  Tokens       1,234 (1,000 in / 234 out)"
    assert lines[4].endswith("(+1 calls unpriced)")


def test_the_one_line_form_writes_a_tiny_cost_as_such() -> None:
    line = str(summary(total_cost=Decimal("0.0000004")))
    assert line.endswith("· cost <$0.000001")  # never "$0.0000", which reads as free


def test_show_usage_prints_the_block_of_every_call_once_at_close(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tokentrail import Tracker

    tracker = Tracker(tmp_path / "u.duckdb", show_usage=True)
    tracker.record(model="gpt-4o", usage={"input_tokens": 1000, "output_tokens": 200})
    tracker.record(model="gpt-4o", usage={"input_tokens": 500, "output_tokens": 100})
    tracker.close()
    tracker.close()
    err = capsys.readouterr().err
    assert err.count("Session complete") == 1
    assert "  Operations   2 calls" in err and "  Tokens       1,800 (1,500 in / 300 out)" in err
    assert "  Cost         $0.0068" in err  # 1,500 x $2.50/M + 300 x $10/M


def test_show_usage_from_the_environment_prints_at_exit(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    script = (
        "import tokentrail, sys\n"
        "t = tokentrail.Tracker(sys.argv[1])\n"
        "t.record(model='gpt-4o-mini', usage={'input_tokens': 10, 'output_tokens': 5})\n"
    )  # never closed: the block comes at exit
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "u.duckdb")],
        env={**os.environ, "TOKENTRAIL_SHOW_USAGE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Session complete" in done.stderr and "1 call" in done.stderr
