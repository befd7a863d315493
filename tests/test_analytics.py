"""Analytics numbers against values computed by hand on a small fixed dataset.

The dataset (UTC):

===  =================  ==========  ======  =========  ======  ====  ====  =====  ======  =======
row  ts                 model       user    operation  tags    in    out   cache  cost    latency
===  =================  ==========  ======  =========  ======  ====  ====  =====  ======  =======
r1   2026-11-20 23:30   gpt-4o      alice   chat       prod,b  1000  200   400    0.0045  1000
r2   2026-11-21 00:30   claude      bob     summarize  prod    500   100   0      0.003   3000
r3   2026-11-22 12:00   mystery     alice   chat       -       100   10    0      NULL    2000
r4   2026-11-22 12:01   gpt-4o      carol   chat       -       2000  0     1000   0.004   500
===  =================  ==========  ======  =========  ======  ====  ====  =====  ======  =======

r2 has 50 reasoning tokens; r3 failed (status error) and has no price; r4 is estimated.
"""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from tests.analytics_data import R1, R2, R3, R4, cost, utc, write_db
from tokentrail import analytics
from tokentrail.analytics import Analytics
from tokentrail.records import UsageRecord
from tokentrail.usage import Usage


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    return write_db(tmp_path / "usage.duckdb", [R1, R2, R3, R4])


@pytest.fixture()
def no_prices(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cache savings need the catalog: make every model unknown to it."""
    monkeypatch.setattr(analytics.savings, "full_input_price", lambda model, provider: None)


def row(frame: object, **match: object) -> dict[str, object]:
    records = frame.to_dict("records")  # type: ignore[attr-defined]
    found = [r for r in records if all(r[k] == v for k, v in match.items())]
    assert len(found) == 1, (match, records)
    return found[0]


# ---------------------------------------------------------------------------- summary
def test_summary_totals(db: Path, no_prices: None) -> None:
    s = Analytics(db).summary().iloc[0]
    assert s["calls"] == 4
    assert s["input_tokens"] == 3600
    assert s["output_tokens"] == 310
    assert s["total_tokens"] == 3910
    assert s["cache_read_tokens"] == 1400
    assert s["reasoning_tokens"] == 50
    assert s["cost"] == pytest.approx(0.0115)
    assert s["priced_calls"] == 3
    assert s["unpriced_calls"] == 1
    assert s["errors"] == 1
    assert s["error_rate"] == pytest.approx(0.25)
    assert s["estimated_share"] == pytest.approx(0.25)
    assert s["cache_hit_rate"] == pytest.approx(1400 / 3600)
    assert s["reasoning_share"] == pytest.approx(50 / 310)
    assert s["avg_cost_per_call"] == pytest.approx(0.0115 / 3)
    assert s["first_call"] == utc(2026, 11, 20, 23, 30)
    assert s["last_call"] == utc(2026, 11, 22, 12, 1)


def test_unknown_cost_rows_are_counted_but_not_priced(db: Path, no_prices: None) -> None:
    s = analytics.summary(db, user_id="alice").iloc[0]
    assert s["calls"] == 2  # r1 and the unpriced r3
    assert s["total_tokens"] == 1310
    assert s["cost"] == pytest.approx(0.0045)
    assert s["unpriced_calls"] == 1
    assert s["avg_cost_per_call"] == pytest.approx(0.0045)


def test_cache_savings_use_the_full_input_price(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # $2.50 per 1M input tokens for gpt-4o; the other models have no cached tokens.
    prices = {("gpt-4o", "openai"): Decimal("0.0000025")}
    monkeypatch.setattr(
        analytics.savings, "full_input_price", lambda model, provider: prices.get((model, provider))
    )
    s = analytics.summary(db).iloc[0]
    # 1400 cached tokens at full price 0.0035 minus what they cost 0.0005 + 0.00125
    assert s["cache_savings"] == pytest.approx(0.0035 - 0.00175)
    table = analytics.cache_savings(db)
    assert table.to_dict("records") == [
        {
            "priced_model": "gpt-4o",
            "provider": "openai",
            "cache_read_tokens": 1400,
            "cache_read_cost": pytest.approx(0.00175),
            "full_price_cost": pytest.approx(0.0035),
            "savings": pytest.approx(0.00175),
        }
    ]


def test_cache_savings_with_unknown_price_are_not_guessed(db: Path, no_prices: None) -> None:
    s = analytics.summary(db).iloc[0]
    assert s["cache_savings"] == 0
    assert s["cache_tokens_unpriced"] == 1400


def test_filters_by_tag_operation_and_time(db: Path, no_prices: None) -> None:
    assert analytics.summary(db, tag="prod").iloc[0]["calls"] == 2
    assert analytics.summary(db, tag=["beta", "nope"]).iloc[0]["calls"] == 1
    assert analytics.summary(db, operation="chat", model="gpt-4o").iloc[0]["calls"] == 2
    assert analytics.summary(db, provider="anthropic").iloc[0]["cost"] == pytest.approx(0.003)
    # since inclusive, until exclusive
    window = analytics.summary(db, since="2026-11-21T00:30:00Z", until="2026-11-22T12:01:00Z")
    assert window.iloc[0]["calls"] == 2  # r2 and r3
    assert analytics.summary(db, since="2026-11-22").iloc[0]["calls"] == 2


def test_relative_times_count_back_from_now(db: Path, no_prices: None) -> None:
    now = utc(2026, 11, 22, 12, 0, 30)
    assert analytics.summary(db, since="24h", now=now).iloc[0]["calls"] == 2  # r3, r4
    assert analytics.summary(db, since="24h", until="now", now=now).iloc[0]["calls"] == 1
    assert analytics.summary(db, since="this-month", now=now).iloc[0]["calls"] == 4


def test_unknown_filter_and_dimension_say_what_to_use(db: Path) -> None:
    with pytest.raises(ValueError, match="unknown filter 'colour'"):
        analytics.summary(db, colour="red")
    with pytest.raises(ValueError, match="use one of model"):
        analytics.by(db, "colour")


def test_filter_values_are_bound_not_spliced(db: Path, no_prices: None) -> None:
    sneaky = "alice' OR '1'='1"
    assert analytics.summary(db, user_id=sneaky).iloc[0]["calls"] == 0


# ---------------------------------------------------------------------------- by
def test_by_model_orders_by_cost_with_shares(db: Path) -> None:
    frame = Analytics(db).by_model()
    assert list(frame["model"]) == ["gpt-4o", "claude", "mystery"]
    gpt = row(frame, model="gpt-4o")
    assert gpt["calls"] == 2
    assert gpt["total_tokens"] == 3200
    assert gpt["cost"] == pytest.approx(0.0085)
    assert gpt["share"] == pytest.approx(0.0085 / 0.0115)
    mystery = row(frame, model="mystery")
    assert (mystery["cost"], mystery["unpriced_calls"], mystery["errors"]) == (0, 1, 1)
    assert frame["share"].sum() == pytest.approx(1.0)


def test_by_top_groups_the_rest_as_other(db: Path) -> None:
    frame = analytics.by_model(db, top=1)
    assert list(frame["model"]) == ["gpt-4o", "other"]
    other = row(frame, model="other")
    assert other["calls"] == 2
    assert other["total_tokens"] == 710
    assert other["cost"] == pytest.approx(0.003)
    assert other["unpriced_calls"] == 1


def test_by_tag_counts_a_call_under_each_tag(db: Path) -> None:
    frame = analytics.by(db, "tag")
    assert list(frame["tag"]) == ["prod", "beta", "(untagged)"]
    assert row(frame, tag="prod")["cost"] == pytest.approx(0.0075)
    assert row(frame, tag="beta")["calls"] == 1
    assert row(frame, tag="(untagged)")["calls"] == 2


def test_by_user_and_operation_shortcuts(db: Path) -> None:
    users = analytics.by_user(db)
    assert list(users["user_id"]) == ["alice", "carol", "bob"]  # 0.0045, 0.004, 0.003
    ops = analytics.by_operation(db)
    assert row(ops, operation="chat")["calls"] == 3
    assert list(analytics.by(db, "session_id")["session_id"]) == ["s1", "(none)", "s2"]
    assert list(analytics.by(db, "status")["status"]) == ["ok", "error"]
    assert set(analytics.by(db, "framework")["framework"]) == {"manual", "langchain"}


# ---------------------------------------------------------------------------- over time
def test_over_time_by_day_fills_empty_days(db: Path) -> None:
    frame = analytics.over_time(db, "day", since="2026-11-19", until="2026-11-24")
    days = [p.strftime("%m-%d") for p in frame["period"]]
    assert days == ["11-19", "11-20", "11-21", "11-22", "11-23"]
    assert list(frame["calls"]) == [0, 1, 1, 2, 0]
    assert list(frame["cost"]) == pytest.approx([0, 0.0045, 0.003, 0.004, 0])


def test_over_time_respects_time_zone_at_day_boundaries(db: Path) -> None:
    # New York is UTC-5 in November: r1 (23:30Z) and r2 (00:30Z) both fall on the 20th.
    ny = analytics.over_time(db, "day", tz="America/New_York")
    assert [p.strftime("%m-%d") for p in ny["period"]] == ["11-20", "11-21", "11-22"]
    assert list(ny["calls"]) == [2, 0, 2]
    # Tokyo is UTC+9: r1 and r2 fall on the 21st, r3 and r4 on the 22nd (21:00 local).
    tokyo = analytics.over_time(db, "day", tz="Asia/Tokyo")
    assert [p.strftime("%m-%d") for p in tokyo["period"]] == ["11-21", "11-22"]
    assert list(tokyo["calls"]) == [2, 2]
    # UTC splits them.
    assert list(analytics.over_time(db, "day")["calls"]) == [1, 1, 2]


def test_over_time_by_model_has_every_model_every_day(db: Path) -> None:
    frame = analytics.over_time(db, "day", by="model")
    assert len(frame) == 9
    assert list(frame["model"][:3]) == ["gpt-4o", "claude", "mystery"]
    day22 = frame[frame["period"] == datetime(2026, 11, 22)]
    assert dict(zip(day22["model"], day22["calls"], strict=True)) == {
        "gpt-4o": 1,
        "claude": 0,
        "mystery": 1,
    }
    top = analytics.over_time(db, "day", by="model", top=1)
    assert set(top["model"]) == {"gpt-4o", "other"}
    assert top["cost"].sum() == pytest.approx(0.0115)


def test_over_time_hour_week_month(db: Path) -> None:
    hours = analytics.over_time(db, "hour")
    assert len(hours) == 38  # 2026-11-20 23:00 .. 2026-11-22 12:00
    assert hours["calls"].sum() == 4
    weeks = analytics.over_time(db, "week")
    assert list(weeks["period"]) == [datetime(2026, 11, 16)]  # a Monday
    months = analytics.over_time(db, "month")
    assert list(months["period"]) == [datetime(2026, 11, 1)]
    assert months["total_tokens"].sum() == 3910
    with pytest.raises(ValueError, match="unknown period"):
        analytics.over_time(db, "fortnight")


# ---------------------------------------------------------------------------- trend, forecast
def test_trend_compares_with_previous_period(db: Path) -> None:
    now = utc(2026, 11, 22, 12, 0, 30)
    frame = analytics.trend(db, "day", now=now).set_index("metric")
    # current: [11-21 12:00:30, now) = r3 (unpriced); previous: [11-20 12:00:30, ...) = r1, r2
    assert frame.loc["calls", "current"] == 1
    assert frame.loc["calls", "previous"] == 2
    assert frame.loc["cost", "current"] == 0
    assert frame.loc["cost", "previous"] == pytest.approx(0.0075)
    assert frame.loc["cost", "change_pct"] == pytest.approx(-100.0)
    assert frame.loc["total_tokens", "change"] == 110 - 1800


def test_forecast_from_a_full_week_of_history(tmp_path: Path) -> None:
    records = [
        UsageRecord(
            model="m",
            provider="p",
            usage=Usage(input_tokens=10),
            ts=utc(2026, 11, day, 12),
            cost=cost("1"),
        )
        for day in range(1, 23)
    ]
    path = write_db(tmp_path / "f.duckdb", records)
    f = analytics.forecast(path, now=utc(2026, 11, 23)).iloc[0]
    assert f["month_to_date"] == pytest.approx(22)
    assert f["run_rate_per_day"] == pytest.approx(1)  # 7 dollars over the last 7 days
    assert f["days_left"] == pytest.approx(8)
    assert f["projected"] == pytest.approx(30)
    assert "run rate" in f["method"] and "8.00 days left in 2026-11" in f["method"]


def test_forecast_with_young_data_uses_its_age(db: Path) -> None:
    f = analytics.forecast(db, now=utc(2026, 11, 23)).iloc[0]
    age = 2 + 1 / 48  # first call 2026-11-20 23:30
    assert f["lookback_days"] == pytest.approx(age)
    assert f["run_rate_per_day"] == pytest.approx(0.0115 / age)
    assert f["projected"] == pytest.approx(0.0115 + 8 * 0.0115 / age)
    assert f["unpriced_calls"] == 1


# ---------------------------------------------------------------------------- rate, latency
def test_rate_of_one_call_spans_its_latency(db: Path) -> None:
    r = analytics.rate(db, user_id="bob").iloc[0]  # r2: 600 tokens, $0.003, 3 s
    assert r["minutes"] == pytest.approx(0.05)
    assert r["tokens_per_minute"] == pytest.approx(12000)
    assert r["cost_per_minute"] == pytest.approx(0.06)


def test_rate_of_a_session(db: Path) -> None:
    r = analytics.rate(db, session_id="s1").iloc[0]
    # r1 starts 2026-11-20 23:30:00, r3 ends 2026-11-22 12:00:02
    minutes = (36.5 * 3600 + 2) / 60
    assert r["minutes"] == pytest.approx(minutes)
    assert r["tokens_per_minute"] == pytest.approx(1310 / minutes)
    assert r["calls"] == 2


def test_latency_percentiles(db: Path) -> None:
    lat = analytics.latency(db).iloc[0]
    # sorted 500, 1000, 2000, 3000 with linear interpolation
    assert lat["p50_ms"] == pytest.approx(1500)
    assert lat["p95_ms"] == pytest.approx(2850)
    assert lat["p99_ms"] == pytest.approx(2970)
    assert lat["mean_ms"] == pytest.approx(1625)
    per_model = analytics.latency(db, by="model")
    assert row(per_model, model="gpt-4o")["p50_ms"] == pytest.approx(750)


# ---------------------------------------------------------------------------- history
def test_history_newest_first_with_filters(db: Path) -> None:
    recent = analytics.history(db, limit=2)
    assert list(recent["id"]) == [R4.id, R3.id]
    assert recent.iloc[0]["ts"] == utc(2026, 11, 22, 12, 1)
    assert math.isnan(recent.iloc[1]["total_cost"])  # unpriced shows as missing, not 0
    alice = analytics.history(db, user_id="alice")
    assert list(alice["id"]) == [R3.id, R1.id]
    assert list(alice.iloc[1]["tags"]) == ["prod", "beta"]


# ---------------------------------------------------------------------------- edge stores
def test_empty_store(tmp_path: Path) -> None:
    path = tmp_path / "never-written.duckdb"
    s = analytics.summary(path).iloc[0]
    assert (s["calls"], s["cost"], s["total_tokens"]) == (0, 0, 0)
    assert math.isnan(s["cache_hit_rate"]) and math.isnan(s["error_rate"])
    assert analytics.by_model(path).empty
    assert analytics.over_time(path, "day").empty
    assert analytics.history(path).empty
    assert analytics.forecast(path, now=utc(2026, 11, 23)).iloc[0]["projected"] == 0
    assert math.isnan(analytics.rate(path).iloc[0]["tokens_per_minute"])
    assert analytics.latency(path).iloc[0]["calls"] == 0


def test_one_row_store(tmp_path: Path) -> None:
    path = write_db(tmp_path / "one.duckdb", [R2])
    s = analytics.summary(path).iloc[0]
    assert (s["calls"], s["total_tokens"], s["reasoning_tokens"]) == (1, 600, 50)
    assert s["cost"] == pytest.approx(0.003)
    frame = analytics.over_time(path, "day", by="model")
    assert len(frame) == 1 and frame.iloc[0]["cost"] == pytest.approx(0.003)
    assert analytics.by_model(path).iloc[0]["share"] == pytest.approx(1.0)


def test_before_query_runs_first(db: Path) -> None:
    seen: list[str] = []
    Analytics(db, before_query=lambda: seen.append("flush")).summary()
    assert seen == ["flush"]


def test_own_sql(db: Path) -> None:
    frame = Analytics(db).sql("SELECT count(*) AS n FROM usage WHERE user_id = ?", ["alice"])
    assert frame.iloc[0]["n"] == 2


# ---------------------------------------------------------------------------- with the real parts
def test_tracker_analytics_sees_calls_just_recorded(tmp_path: Path) -> None:
    from tokentrail import Tracker

    with Tracker(tmp_path / "t.duckdb") as tracker:
        tracker.record(
            model="gpt-4o",
            provider="openai",
            usage={"input_tokens": 2000, "cache_read_tokens": 1000, "output_tokens": 100},
            user_id="u1",
        )
        s = tracker.analytics.summary().iloc[0]  # no explicit flush: the property flushes
        assert s["calls"] == 1
        # catalog: gpt-4o input $2.50/M, cached input $1.25/M, output $10/M
        assert s["cost"] == pytest.approx(1000 * 2.5e-6 + 1000 * 1.25e-6 + 100 * 10e-6)
        assert s["cache_savings"] == pytest.approx(1000 * (2.5e-6 - 1.25e-6))
        assert tracker.analytics.by_user().iloc[0]["user_id"] == "u1"
