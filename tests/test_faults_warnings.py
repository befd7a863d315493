"""``python -W error``: a budget warning must not turn into a misleading settle failure.

Warnings made errors used to raise ``BudgetWarning`` out of the settle that follows a
call: the tracker logged "could not settle a budget reservation" with a traceback and the
budget's ``on_warn`` callback never ran.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pytest

from tokentrail import Tracker


def test_budget_warnings_under_w_error_call_on_warn_and_log_no_settle_failure(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[object] = []
    caplog.set_level(logging.WARNING, logger="tokentrail")
    with Tracker(tmp_path / "usage.duckdb") as tracker:
        tracker.budget(usd=1, per="day", warn_at=(0.5,), on_warn=seen.append)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # what `python -W error` does
            for _ in range(3):  # 0.3 USD each: the 50% threshold is crossed on the second
                tracker.record(model="gpt-4o", usage={"input_tokens": 120_000, "output_tokens": 0})
    assert len(seen) == 1
    messages = [r.getMessage() for r in caplog.records]
    assert not any("could not settle" in m for m in messages), messages
    assert not any(r.exc_info for r in caplog.records), messages
    assert any("50%" in m or "⚠️" in m for m in messages), messages
