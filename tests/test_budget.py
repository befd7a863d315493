"""The budget guard on a real Tracker and DuckDB file: reserve, settle, stack, warn, reload."""

from __future__ import annotations

import threading
import time
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import tokentrail
from tokentrail import BudgetExceededError, BudgetWarning, Tracker, Usage, UsageRecord
from tokentrail.budget import PreflightRequest, Reservation
from tokentrail.context import Attribution
from tokentrail.estimate import count_message_tokens

MSG = [{"role": "user", "content": "Say hello."}]
PROMPT = count_message_tokens(MSG, "gpt-4o-mini")  # 10: 3 + "user" + "Say hello." + 3
EST = PROMPT + 100  # worst case of request(): prompt + max_tokens


def request(
    t: Tracker,
    user: str | None = "u1",
    max_tokens: int = 100,
    model: str = "gpt-4o-mini",
    **kw: Any,
) -> PreflightRequest:
    ctx = t.call_context(Attribution.of(user_id=user, **kw))
    return PreflightRequest(
        model=model, provider="openai", messages=MSG, max_tokens=max_tokens, context=ctx
    )


def finish(
    t: Tracker,
    reservation: Reservation | None,
    *,
    user: str | None = "u1",
    input_tokens: int = 10,
    output_tokens: int = 90,
    status: str = "ok",
    model: str = "gpt-4o-mini",
) -> UsageRecord:
    record = UsageRecord(
        model=model,
        provider="openai",
        usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens),
        framework="langchain",
        status=status,  # type: ignore[arg-type]
    )
    ctx = t.call_context(Attribution.of(user_id=user))
    return t.capture(record, context=ctx, reservation=reservation)


def test_no_budget_is_a_fast_none(tracker: Tracker) -> None:
    assert tracker.preflight(request(tracker)) is None
    assert tracker.budget_status() == []


def test_sequential_calls_stop_before_the_limit(tracker: Tracker) -> None:
    tracker.budget(tokens=1000, per="day", scope="user")
    est = tracker.check(user_id="u1", model="gpt-4o-mini", messages=MSG, max_tokens=100).estimate
    assert est is not None and est.input_tokens == PROMPT == 10 and est.output_tokens == 100
    sent = 0
    with pytest.raises(BudgetExceededError) as info:
        for _ in range(100):
            r = tracker.preflight(request(tracker))
            sent += 1
            finish(tracker, r)  # 100 tokens each
    # 9 calls settle 900; the 10th would need 110 more: 900 + 110 > 1000.
    assert sent == 9
    err = info.value
    assert (err.scope, err.key, err.window, err.unit) == ("user", "u1", "day", "tokens")
    assert (err.limit, err.spent, err.reserved, err.estimate) == (1000, 900, 0, EST)
    assert "user 'u1'" in str(err) and "900" in str(err)
    status = tracker.budget_status()
    assert [(s.key, s.spent, s.percent) for s in status] == [("u1", 900, 90.0)]


def test_usd_budget_uses_catalog_price(tracker: Tracker) -> None:
    tracker.budget(usd=0.001, per="day", scope="global")
    r = tracker.preflight(request(tracker, max_tokens=1000))
    assert r is not None
    expected = tokentrail.cost(
        "gpt-4o-mini", provider="openai", input_tokens=PROMPT, output_tokens=1000
    )
    assert expected is not None and r.estimate.usd == expected.total
    finish(tracker, r, input_tokens=PROMPT, output_tokens=1000)
    spent = tracker.budget_status()[0].spent
    assert spent == expected.total
    # gpt-4o-mini: $0.15/M in, $0.60/M out -> ~$0.0006 per call; the second would overshoot.
    with pytest.raises(BudgetExceededError) as info:
        tracker.preflight(request(tracker, max_tokens=1000))
    assert info.value.unit == "usd" and "$" in str(info.value)


def test_unknown_model_policy(tracker: Tracker) -> None:
    tracker.budget(usd=1, per="day", scope="global")
    with pytest.raises(BudgetExceededError, match="no price is known"):
        tracker.preflight(request(tracker, model="my-private-model-x"))
    tracker.budget(tokens=10_000, per="day", scope="global")  # token budgets still apply


def test_unknown_model_fallback_price(tmp_path: Path) -> None:
    with Tracker(tmp_path / "u.duckdb") as t:
        t.budget(usd=1, per="day", scope="global", unpriced=(1000, 1000))  # $1000/Mtok
        r = t.preflight(request(t, model="my-private-model-x", max_tokens=100))
        assert r is not None and not r.estimate.exact  # heuristic count, with its margin
        assert r.entries[0][2] == Decimal(1000) * r.estimate.tokens / 1_000_000
        finish(t, r, model="my-private-model-x", input_tokens=500, output_tokens=400)
        assert t.budget_status()[0].spent == Decimal("0.9")
        with pytest.raises(BudgetExceededError):
            t.preflight(request(t, model="my-private-model-x", max_tokens=100))
    with Tracker(tmp_path / "v.duckdb") as t:
        t.budget(usd=1, per="day", scope="global", unpriced="allow")
        assert t.preflight(request(t, model="my-private-model-x")) is not None


def test_error_and_cancel_release_the_reservation(tracker: Tracker) -> None:
    tracker.budget(tokens=300, per="day", scope="user")
    r1 = tracker.preflight(request(tracker))
    r2 = tracker.preflight(request(tracker))
    [s] = tracker.budget_status()
    assert (s.spent, s.reserved) == (0, 2 * EST)
    with pytest.raises(BudgetExceededError):
        tracker.preflight(request(tracker))  # 220 + 110 > 300
    finish(tracker, r1, input_tokens=0, output_tokens=0, status="error")
    tracker.budget_status()
    assert tracker.budget_status()[0].reserved == EST
    assert r2 is not None
    tracker._guard.release(r2)  # type: ignore[union-attr]
    tracker._guard.release(r2)  # type: ignore[union-attr]  # idempotent
    finish(tracker, r2)  # settling after release is ignored too
    assert (tracker.budget_status()[0].spent, tracker.budget_status()[0].reserved) == (0, 0)


def test_partial_usage_of_a_cancelled_stream_still_counts(tracker: Tracker) -> None:
    tracker.budget(tokens=1000, per="day", scope="user")
    r = tracker.preflight(request(tracker))
    finish(tracker, r, input_tokens=10, output_tokens=40, status="cancelled")
    assert tracker.budget_status()[0].spent == 50


def test_concurrent_reservations_never_exceed_the_limit(tracker: Tracker) -> None:
    tracker.budget(tokens=2000, per="day", scope="global")
    barrier = threading.Barrier(60)
    outcomes: list[str] = []
    lock = threading.Lock()

    def call() -> None:
        barrier.wait()
        try:
            r = tracker.preflight(request(tracker))
        except BudgetExceededError:
            with lock:
                outcomes.append("refused")
            return
        with lock:
            outcomes.append("ok")
        finish(tracker, r, input_tokens=PROMPT, output_tokens=100)  # the full worst case

    threads = [threading.Thread(target=call) for _ in range(60)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    ok = outcomes.count("ok")
    [s] = tracker.budget_status()
    assert ok == 2000 // EST == 18
    assert s.spent == ok * EST <= 2000 and s.reserved == 0


def test_budgets_stack_and_the_tightest_decides(tracker: Tracker) -> None:
    tracker.budget(tokens=10_000, per="day", scope="global")
    tracker.budget(tokens=250, per="day", scope="user")
    tracker.budget(tokens=5_000, per="month", scope="user")
    finish(tracker, tracker.preflight(request(tracker)))
    finish(tracker, tracker.preflight(request(tracker)))
    with pytest.raises(BudgetExceededError) as info:
        tracker.preflight(request(tracker))
    assert (info.value.scope, info.value.window, info.value.limit) == ("user", "day", 250)
    keys = sorted((s.scope, s.window, s.spent) for s in tracker.budget_status())
    assert keys == [("global", "day", 200), ("user", "day", 200), ("user", "month", 200)]


def test_one_users_budget_never_blocks_another(tracker: Tracker) -> None:
    tracker.budget(tokens=150, per="day", scope="user")
    finish(tracker, tracker.preflight(request(tracker, user="alice")), user="alice")
    with pytest.raises(BudgetExceededError):
        tracker.preflight(request(tracker, user="alice"))
    assert tracker.preflight(request(tracker, user="bob")) is not None


def test_per_user_override_replaces_the_default(tracker: Tracker) -> None:
    tracker.budget(tokens=150, per="day", scope="user")
    tracker.budget(tokens=10_000, per="day", scope="user", user_id="vip")
    for _ in range(5):
        finish(tracker, tracker.preflight(request(tracker, user="vip")), user="vip")
    with pytest.raises(BudgetExceededError):
        finish(tracker, tracker.preflight(request(tracker, user="pleb")), user="pleb")
        tracker.preflight(request(tracker, user="pleb"))


def test_tag_operation_and_model_scopes(tracker: Tracker) -> None:
    tracker.budget(tokens=150, per="day", scope="tag:beta")
    tracker.budget(tokens=150, per="day", scope="model")
    # untagged calls are not limited by the tag budget, but the model budget applies
    assert tracker.preflight(request(tracker, user="x", tags=["beta"])) is not None
    with pytest.raises(BudgetExceededError) as info:
        tracker.preflight(request(tracker, user="y"))
    assert info.value.scope in ("tag:beta", "model")
    assert tracker.preflight(request(tracker, user="z", model="gpt-4o")) is not None


def test_call_window_limits_each_call_alone(tracker: Tracker) -> None:
    tracker.budget(tokens=500, per="call", scope="global")
    for _ in range(10):
        finish(tracker, tracker.preflight(request(tracker, max_tokens=400)))
    with pytest.raises(BudgetExceededError):
        tracker.preflight(request(tracker, max_tokens=600))


def test_run_window_resets_per_track_block(tracker: Tracker) -> None:
    tracker.budget(tokens=250, per="run", scope="global")
    assert tracker.preflight(request(tracker)) is None  # no block: no run budget applies
    for _ in range(2):
        with tracker.track(user_id="u1"):
            ctx = tracker.call_context()
            for _ in range(2):
                r = tracker.preflight(
                    PreflightRequest("gpt-4o-mini", "openai", MSG, None, 100, None, ctx)
                )
                tracker.capture(
                    UsageRecord("gpt-4o-mini", "openai", Usage(input_tokens=11, output_tokens=100)),
                    context=ctx,
                    reservation=r,
                )
            with pytest.raises(BudgetExceededError) as info:
                tracker.preflight(
                    PreflightRequest("gpt-4o-mini", "openai", MSG, None, 100, None, ctx)
                )
            assert info.value.window == "run"


def test_session_window(tracker: Tracker) -> None:
    tracker.budget(tokens=150, per="session", scope="user")
    finish(tracker, tracker.preflight(request(tracker, session_id="s1")))
    with pytest.raises(BudgetExceededError):
        tracker.preflight(request(tracker, session_id="s1"))
    assert tracker.preflight(request(tracker, session_id="s2")) is not None


def test_warnings_fire_once_per_threshold(tracker: Tracker) -> None:
    seen: list[Any] = []
    tracker.budget(tokens=1000, per="day", scope="user", warn_at=(0.5, 0.8), on_warn=seen.append)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(9):  # 100 tokens each: crosses 50% at call 5, 80% at call 8
            finish(tracker, tracker.preflight(request(tracker)))
    budget_warnings = [w for w in caught if issubclass(w.category, BudgetWarning)]
    assert [str(w.message) for w in budget_warnings] == [
        "⚠️ 50% of daily limit used for user 'u1' — Tokens: 500 / 1,000",
        "⚠️ 80% of daily limit used for user 'u1' — Tokens: 800 / 1,000",
    ]
    assert [s.percent for s in seen] == [50.0, 80.0]


def test_check_does_not_reserve_and_explains(tracker: Tracker) -> None:
    tracker.budget(tokens=150, per="day", scope="user")
    ok = tracker.check(user_id="u1", model="gpt-4o-mini", messages=MSG, max_tokens=100)
    assert ok.allowed and ok.remaining == 150 and ok.unit == "tokens"
    assert tracker.budget_status()[0].reserved == 0
    finish(tracker, tracker.preflight(request(tracker)))
    no = tracker.check(user_id="u1", model="gpt-4o-mini", messages=MSG, max_tokens=100)
    assert not no.allowed and no.remaining == 50 and "budget exceeded" in (no.reason or "")
    assert no.retry_after is not None and 0 < no.retry_after <= 86400
    assert tracker.check(user_id="u2", model="gpt-4o-mini", messages=MSG, max_tokens=100)


def test_spend_survives_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "usage.duckdb"
    with Tracker(db) as first:
        for _ in range(5):
            first.record(
                model="gpt-4o-mini", usage={"input_tokens": 50, "output_tokens": 150}, user_id="u1"
            )
        first.record(model="gpt-4o-mini", usage={"input_tokens": 500}, user_id="u2")
    with Tracker(db) as second:
        second.budget(tokens=1000, per="day", scope="user")
        with pytest.raises(BudgetExceededError) as info:
            second.preflight(request(second, user="u1"))
        assert info.value.spent == 1000
        assert second.preflight(request(second, user="u2")) is not None


def test_other_process_spend_is_reloaded(tmp_path: Path) -> None:
    db = tmp_path / "usage.duckdb"
    with Tracker(db) as guarded:
        guarded.budget(tokens=1000, per="day", scope="global", reload_every=0.0)
        r = guarded.preflight(request(guarded))
        finish(guarded, r)  # 100 tokens, settled locally
        with Tracker(db) as other:  # another writer on the same file
            other.record(model="gpt-4o-mini", usage={"input_tokens": 700})
        guarded.flush()
        [s] = guarded.budget_status()
        assert s.spent == 800  # 700 from the other writer + ours once, not twice
        with pytest.raises(BudgetExceededError):
            guarded.preflight(request(guarded, max_tokens=200))


def test_rolling_window_loads_recent_spend_only(tmp_path: Path) -> None:
    from datetime import datetime, timedelta, timezone

    db = tmp_path / "usage.duckdb"
    now = datetime.now(timezone.utc)
    with Tracker(db) as first:
        first.record(model="gpt-4o-mini", usage={"input_tokens": 400}, ts=now - timedelta(hours=30))
        first.record(model="gpt-4o-mini", usage={"input_tokens": 300}, ts=now - timedelta(hours=2))
    with Tracker(db) as t:
        t.budget(tokens=1000, per="24h", scope="global")
        [s] = t.budget_status()
        assert s.spent == 300 and s.window == "24h"


def test_fit_messages_drops_oldest_turns() -> None:
    from tokentrail.estimate import count_message_tokens

    system = {"role": "system", "content": "You are terse."}
    history: list[dict[str, Any]] = [system]
    for i in range(10):
        history.append({"role": "user", "content": f"Question {i}: " + "word " * 50})
        history.append({"role": "assistant", "content": f"Answer {i}: " + "word " * 50})
    limit = 400
    fitted = tokentrail.fit_messages(history, model="gpt-4o", max_input_tokens=limit)
    assert count_message_tokens(fitted, "gpt-4o") <= limit
    assert fitted[0] == system and fitted[-2:] == history[-2:]
    kept = history[history.index(fitted[1]) :]
    assert fitted[1:] == kept  # a contiguous suffix: only the oldest turns went
    assert fitted[1]["role"] == "user"
    assert tokentrail.fit_messages(history, model="gpt-4o", max_input_tokens=10**6) == history


def test_fit_messages_keeps_tool_results_with_their_call() -> None:
    history = [
        {"role": "user", "content": "old " * 200},
        {"role": "assistant", "content": "old " * 200},
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"function": {"name": "w", "arguments": "{}"}}],
        },
        {"role": "tool", "content": "sunny"},
        {"role": "assistant", "content": "It is sunny."},
    ]
    fitted = tokentrail.fit_messages(history, model="gpt-4o", max_input_tokens=60, keep_last=2)
    assert fitted == history[2:]


def test_a_reservation_never_settled_is_given_back_after_its_ttl(
    tracker: Tracker, caplog: pytest.LogCaptureFixture
) -> None:

    tracker.budget(tokens=300, per="day", scope="user", reservation_ttl=0.2)
    orphan = tracker.preflight(request(tracker))  # its end event never comes
    assert orphan is not None
    r2 = tracker.preflight(request(tracker))
    with pytest.raises(BudgetExceededError):
        tracker.preflight(request(tracker))  # 2 x 110 held, 110 more does not fit in 300
    time.sleep(0.3)
    with caplog.at_level("WARNING", logger="tokentrail"):
        r3 = tracker.preflight(request(tracker))  # the orphan expired; r2 (also old) too
    assert r3 is not None
    assert "never settled" in caplog.text
    assert tracker.budget_status()[0].reserved == EST
    finish(tracker, r2)  # settling an expired reservation still counts what was used
    finish(tracker, orphan, input_tokens=0, output_tokens=0)
    [s] = tracker.budget_status()
    assert (s.spent, s.reserved) == (100, EST)


def test_preflight_prices_the_trackers_price_variant(tmp_path: Path) -> None:
    ask = PreflightRequest(model="o3", provider="openai", messages=MSG, max_tokens=1000)
    estimates = []
    for name, variant in (("standard", None), ("batch", "batch")):
        with Tracker(tmp_path / f"{name}.duckdb", price_variant=variant) as t:
            t.budget(usd=100, per="day", scope="global")
            assert t._guard is not None
            estimates.append(t._guard.estimate(ask))
    standard, batch = estimates
    prompt = count_message_tokens(MSG, "o3")
    # o3: $2 / $8 per 1M tokens; its batch price is half of it.
    assert standard.usd == (Decimal(2) * prompt + Decimal(8) * 1000) / 1_000_000
    assert batch.usd == standard.usd / 2


def test_holds_expire_by_the_wall_clock_not_the_guards_clock(tracker: Tracker) -> None:
    from datetime import datetime, timezone

    from tokentrail.budget import BudgetGuard

    later = datetime(2031, 1, 15, 12, 0, tzinfo=timezone.utc)  # a guard told it is 2031
    guard = BudgetGuard(tracker, clock=lambda: later)
    guard.add(tokens=200, per="day", scope="global")
    held = guard.reserve(request(tracker))  # 110 tokens, held for reservation_ttl from now
    assert held is not None
    with pytest.raises(BudgetExceededError):
        guard.reserve(request(tracker))  # still held: 110 + 110 > 200
    guard.release(held)
    assert guard.reserve(request(tracker)) is not None
