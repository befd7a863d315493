"""What a refusal and a budget alert tell the person who meets them (issue 25)."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import warnings
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from tokentrail import BudgetExceededError, BudgetWarning, Tracker
from tokentrail.budget import PreflightRequest
from tokentrail.context import Attribution

MSG = [{"role": "user", "content": "Summarize policy 7 of the handbook."}]


def refusal(t: Tracker, max_tokens: int | None) -> BudgetExceededError:
    ctx = t.call_context(Attribution.of(user_id="intern"))
    request = PreflightRequest(
        model="gpt-4o", provider="openai", messages=MSG, max_tokens=max_tokens, context=ctx
    )
    with pytest.raises(BudgetExceededError) as info:
        t.preflight(request)
    return info.value


def test_a_refusal_says_the_worst_case_the_reset_and_what_to_do(tracker: Tracker) -> None:
    tracker.budget(usd="0.001", per="day", scope="user", user_id="intern", warn_at=())
    error = refusal(tracker, max_tokens=500)
    text = str(error)
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).strftime("%Y-%m-%d 00:00")
    assert f"resets {tomorrow} UTC" in text
    assert "+ 500 reply tokens (max_tokens)" in text and "prompt tokens" in text
    assert "Nothing was sent" in text and "lower max_tokens" in text
    assert error.resets_at is not None and error.basis is not None
    assert str(error.spent) == "0" and error.spent == Decimal(0)  # not 0E-12


def test_without_max_tokens_the_refusal_names_the_models_maximum(tracker: Tracker) -> None:
    tracker.budget(usd="0.001", per="day", scope="user", warn_at=())
    text = str(refusal(tracker, max_tokens=None))
    assert "the model's maximum output" in text and "pass max_tokens to reserve less" in text


def test_a_rolling_window_has_no_reset_time(tracker: Tracker) -> None:
    tracker.budget(usd="0.001", per="24h", scope="user", warn_at=())
    error = refusal(tracker, max_tokens=500)
    assert error.resets_at is None and "resets" not in str(error)


def test_an_alert_is_one_warning_at_the_users_line_and_no_log_line(
    tracker: Tracker, caplog: pytest.LogCaptureFixture
) -> None:
    tracker.budget(tokens=1000, per="day", scope="global", warn_at=(0.5,))
    with warnings.catch_warnings(record=True) as seen, caplog.at_level(logging.INFO):
        warnings.simplefilter("always")
        tracker.record(model="gpt-4o-mini", usage={"input_tokens": 600})  # the user's line
    alerts = [w for w in seen if issubclass(w.category, BudgetWarning)]
    assert len(alerts) == 1
    assert alerts[0].filename == __file__  # points here, not inside tokentrail
    assert not [r for r in caplog.records if "60% of daily limit" in r.getMessage()]


def test_with_warnings_as_errors_an_alert_is_a_log_line_and_on_warn_still_runs(
    tmp_path: Path,
) -> None:
    script = textwrap.dedent(
        f"""
        import logging
        import tokentrail
        logging.basicConfig(level=logging.WARNING, format="%(message)s")
        seen = []
        t = tokentrail.Tracker({str(tmp_path / "u.duckdb")!r})
        t.budget(tokens=1000, per="day", scope="global", warn_at=(0.5,), on_warn=seen.append)
        t.record(model="gpt-4o-mini", usage={{"input_tokens": 600}})
        t.close()
        print("on_warn calls:", len(seen))
        """
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "on_warn calls: 1" in done.stdout
    assert "60% of daily limit used" in done.stderr
    assert "could not settle" not in done.stderr and "Traceback" not in done.stderr
