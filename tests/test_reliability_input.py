"""Bad input never crashes, and never costs a row.

Hypothesis throws arbitrary values at every argument of ``Tracker.record()`` and at the
LangChain handler's callbacks: wrong types, negative/huge/NaN counts, objects whose
``str()`` raises, circular metadata, lone surrogates. Nothing may raise into the caller,
and each call must still be exactly one row in the database (flagged, not dropped).
The extractors have their own properties in ``test_extract_properties.py``.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokentrail import Tracker, Usage
from tokentrail.records import UsageRecord
from tokentrail.store import reading
from tokentrail.usage import COUNT_FIELDS


class Evil:
    """An object that fails at everything a library might do with it."""

    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        return "<Evil>"  # hypothesis prints examples; VeryEvil's repr fails too

    def __int__(self) -> int:
        raise RuntimeError("no int")

    def __float__(self) -> float:
        raise RuntimeError("no float")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no eq")

    __hash__ = object.__hash__


class VeryEvil(Evil):
    """Evil whose ``repr()`` fails as well."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def _circular() -> dict[str, Any]:
    d: dict[str, Any] = {"a": 1}
    d["self"] = d
    return d


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.text(alphabet=st.characters(categories=["Cs"]), max_size=3),  # lone surrogates
    st.binary(max_size=10),
    st.builds(Evil),
)
garbage = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), inner, max_size=4),
        st.frozensets(st.integers(), max_size=3),
    ),
    max_leaves=8,
)
count_dicts = st.dictionaries(
    st.one_of(st.sampled_from(COUNT_FIELDS), st.text(max_size=10)), garbage, max_size=6
)
usages = st.one_of(
    st.none(),
    count_dicts,
    garbage,
    st.builds(
        Usage.from_counts,
        st.dictionaries(st.sampled_from(COUNT_FIELDS), st.integers(-5, 10**7), max_size=5),
    ),
)
texts = st.one_of(st.none(), st.text(max_size=30), garbage)
timestamps = st.one_of(
    st.none(),
    st.datetimes(),  # naive
    st.datetimes(timezones=st.just(timezone.utc)),
    garbage,
)


def _kwargs() -> Any:
    return st.fixed_dictionaries(
        {},
        optional={
            "provider": texts,
            "user_id": texts,
            "session_id": texts,
            "operation": texts,
            "tags": st.one_of(texts, st.lists(texts, max_size=4)),
            "metadata": st.one_of(
                st.none(), st.dictionaries(st.text(max_size=8), garbage, max_size=4), garbage
            ),
            "latency_ms": garbage,
            "status": texts,
            "error_type": texts,
            "request_id": texts,
            "ts": timestamps,
            "streamed": garbage,
            "estimated": garbage,
            "reported_cost": garbage,
            "price_variant": texts,
            "run_id": texts,
            "parent_run_id": texts,
            "trace_id": texts,
        },
    )


def test_record_never_raises_and_keeps_one_row_per_call(tmp_path: Path) -> None:
    db = tmp_path / "usage.duckdb"
    calls: list[str] = []
    with Tracker(db) as tracker:

        @settings(
            max_examples=400,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            database=None,
        )
        @given(
            model=st.one_of(st.sampled_from(["gpt-4o-mini", "claude-haiku-4-5"]), texts),
            usage=usages,
            kwargs=_kwargs(),
        )
        def one_call(model: Any, usage: Any, kwargs: dict[str, Any]) -> None:
            rec = tracker.record(model=model, usage=usage, **kwargs)
            assert isinstance(rec, UsageRecord)
            u = rec.usage
            assert u.cache_read_tokens + u.cache_write_tokens <= u.input_tokens
            assert u.reasoning_tokens + u.output_audio_tokens <= u.output_tokens
            assert all(getattr(u, f) >= 0 for f in COUNT_FIELDS)
            if rec.cost is not None:
                assert rec.cost.total.is_finite() and rec.cost.total >= 0
            calls.append(rec.id)

        one_call()
        # A circular structure and an object that cannot be printed, explicitly.
        for meta in (_circular(), {"x": VeryEvil()}, {VeryEvil(): 1}, VeryEvil()):
            calls.append(tracker.record(model="gpt-4o-mini", usage={}, metadata=meta).id)
        for bad in (VeryEvil(), [VeryEvil()], {"input_tokens": VeryEvil()}):
            calls.append(tracker.record(model=VeryEvil(), usage=bad, user_id=VeryEvil()).id)
        assert tracker.flush(30)
    with reading(db) as con:
        stored = {r[0] for r in con.execute("SELECT id FROM usage").fetchall()}
        bad = con.execute(
            "SELECT count(*) FROM usage WHERE total_tokens < 0 OR input_tokens < 0"
            " OR isnan(latency_ms) OR isinf(latency_ms)"
        ).fetchone()
    assert bad == (0,)
    assert len(calls) == len(set(calls))
    missing = set(calls) - stored
    assert not missing, f"{len(missing)} of {len(calls)} calls were dropped"
    assert len(stored) == len(calls)


# ---------------------------------------------------------------------- LangChain handler
def _result(payload: Any) -> Any:
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, LLMResult

    usage, llm_output, meta = payload
    try:
        message = AIMessage(content="ok", response_metadata=meta if isinstance(meta, dict) else {})
        # Bypass validation the way a buggy integration would: usage of any shape.
        object.__setattr__(message, "usage_metadata", usage)
        gen = ChatGeneration(message=message)
        return LLMResult(generations=[[gen]], llm_output=llm_output)
    except Exception:
        return LLMResult(generations=[[]], llm_output=None)


def test_langchain_handler_survives_malformed_events(tmp_path: Path) -> None:
    db = tmp_path / "usage.duckdb"
    started: list[str] = []
    with Tracker(db) as tracker:
        handler = tracker.langchain()

        @settings(
            max_examples=200,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            database=None,
        )
        @given(
            serialized=st.one_of(st.none(), st.dictionaries(st.text(max_size=5), garbage)),
            params=st.one_of(st.none(), st.dictionaries(st.text(max_size=12), garbage)),
            metadata=st.one_of(st.none(), st.dictionaries(st.text(max_size=12), garbage)),
            payload=st.tuples(
                st.one_of(count_dicts, garbage),
                st.one_of(st.none(), st.dictionaries(st.text(max_size=12), garbage)),
                garbage,
            ),
            fail=st.booleans(),
        )
        def one_call(serialized: Any, params: Any, metadata: Any, payload: Any, fail: bool) -> None:
            from langchain_core.messages import HumanMessage

            run_id = uuid.uuid4()
            handler.on_chat_model_start(
                serialized,
                [[HumanMessage("hi")]],
                run_id=run_id,
                invocation_params=params,
                metadata=metadata,
            )
            if fail:
                handler.on_llm_error(ValueError("boom"), run_id=run_id)
            else:
                handler.on_llm_end(_result(payload), run_id=run_id)
            started.append(str(run_id))

        one_call()
        assert tracker.flush(30)
    with reading(db) as con:
        runs = [r[0] for r in con.execute("SELECT run_id FROM usage").fetchall()]
    assert sorted(runs) == sorted(started), "a malformed call was dropped or doubled"


def test_nan_and_huge_values_are_stored_as_sane_numbers(tmp_path: Path) -> None:
    db = tmp_path / "usage.duckdb"
    with Tracker(db) as tracker:
        rec = tracker.record(
            model="gpt-4o-mini",
            usage={"input_tokens": math.nan, "output_tokens": 2**70, "cache_read_tokens": -3},
            latency_ms=math.inf,
            reported_cost=Decimal("NaN"),
            ts=datetime(2026, 1, 1),  # naive: taken as UTC
        )
        assert rec.usage.issues  # flagged
        assert tracker.flush(30)
    with reading(db) as con:
        row = con.execute(
            "SELECT input_tokens, output_tokens, cache_read_tokens, latency_ms, metadata FROM usage"
        ).fetchone()
    assert row[0] == 0 and row[2] == 0 and row[3] is None
    assert 0 < row[1] < 2**63
    assert "usage_issues" in row[4]


def test_unprintable_ids_and_variant_still_give_one_row(tmp_path: Path) -> None:
    """Found by the property above: such a record used to be dropped at encode time."""
    db = tmp_path / "usage.duckdb"
    with Tracker(db) as tracker:
        ids = [
            tracker.record(model="gpt-4o-mini", usage={"input_tokens": 1}, **{key: VeryEvil()}).id
            for key in ("price_variant", "run_id", "parent_run_id", "trace_id")
        ]
        ids.append(tracker.record(model="gpt-4o-mini", price_variant={"tier": [1]}).id)
        assert tracker.flush(30)
    with reading(db) as con:
        stored = {r[0] for r in con.execute("SELECT id FROM usage").fetchall()}
    assert stored == set(ids)


def test_record_with_a_cost_that_is_not_a_cost_keeps_the_row(tmp_path: Path) -> None:
    """``cost=`` of the wrong type used to make the store drop the record at encode time."""
    db = tmp_path / "usage.duckdb"
    with Tracker(db) as tracker:
        ids = [
            tracker.record(model="gpt-4o-mini", usage={"input_tokens": 1000}, cost=bad).id
            for bad in ("1.5", 3, {"total": 1}, VeryEvil())
        ]
        assert tracker.flush(30)
    with reading(db) as con:
        rows = dict(con.execute("SELECT id, total_cost FROM usage").fetchall())
    assert set(rows) == set(ids)
    assert all(v == Decimal("0.00015") for v in rows.values())  # priced from the catalog


def test_record_reads_iso_text_as_the_time_and_says_when_it_cannot(
    tmp_path: Path, caplog: Any
) -> None:
    with Tracker(tmp_path / "usage.duckdb") as tracker:
        given_ts = tracker.record(model="gpt-4o-mini", ts="2026-12-01T10:00:00Z")
        assert given_ts.ts == datetime(2026, 12, 1, 10, tzinfo=timezone.utc)
        with caplog.at_level("WARNING", logger="tokentrail"):
            before = datetime.now(timezone.utc)
            unreadable = tracker.record(model="gpt-4o-mini", ts="yesterday-ish" * 10_000)
        assert before <= unreadable.ts <= datetime.now(timezone.utc)  # stored as now
        assert "is not a datetime or ISO 8601 text" in caplog.text
        assert len(caplog.text) < 1_000  # the huge value is cut short in the warning


def test_a_negative_reported_cost_is_ignored_with_a_warning(tmp_path: Path, caplog: Any) -> None:
    db = tmp_path / "usage.duckdb"
    with Tracker(db) as tracker:
        for bad in (-1, "NaN", "abc"):
            with caplog.at_level("WARNING", logger="tokentrail"):
                caplog.clear()
                rec = tracker.record(
                    model="gpt-4o-mini", usage={"input_tokens": 1000}, reported_cost=bad
                )
            assert "is not an amount >= 0; ignored" in caplog.text, bad
            assert rec.cost is not None and rec.cost.total == Decimal("0.00015")  # catalog


def test_unknown_model_warnings_are_cut_short_and_capped(caplog: Any) -> None:
    from tokentrail.pricing.engine import _MAX_WARNINGS, Pricer

    pricer = Pricer()
    usage = Usage(input_tokens=10, output_tokens=1)
    with caplog.at_level("WARNING", logger="tokentrail"):
        assert pricer.cost("made-up-model-" + "x" * 100_000, usage=usage) is None
    assert "no price known" in caplog.text
    assert len(caplog.text) < 1_000  # the generated name is cut short

    caplog.clear()
    with caplog.at_level("WARNING", logger="tokentrail"):
        for n in range(_MAX_WARNINGS + 500):  # a model name generated per call
            assert pricer.cost(f"made-up-{n}", usage=usage) is None
    unknown = [r for r in caplog.records if "no price known" in r.getMessage()]
    assert len(unknown) == _MAX_WARNINGS  # the first one above counted too
    assert "no more are logged" in caplog.records[-1].getMessage()
