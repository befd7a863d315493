"""``TOKENTRAIL_DISABLED=1`` turns collection off without a code change."""

from __future__ import annotations

from pathlib import Path

import pytest

from tokentrail import Tracker


def test_nothing_is_recorded_guarded_or_written_while_disabled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    monkeypatch.setenv("TOKENTRAIL_DISABLED", "1")
    db = tmp_path / "usage.duckdb"
    with Tracker(db) as tracker:
        tracker.budget(tokens=1, per="day", scope="global")  # would refuse every call
        assert not tracker.guarded
        model = FakeListChatModel(responses=["hi"] * 3)
        handler = tracker.langchain(user_id="u1")
        for _ in range(3):
            assert model.invoke("hello", config={"callbacks": [handler]}).content == "hi"
        tracker.record(model="gpt-4o", usage={"input_tokens": 10})
        assert tracker.flush(10)
    assert not db.exists()
    # The budget's definition is kept (for the day collection is on again); nothing else.
    written = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert written == ["usage.duckdb.budgets.json"]


def test_an_empty_or_false_value_leaves_collection_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKENTRAIL_DISABLED", "0")
    db = tmp_path / "usage.duckdb"
    with Tracker(db) as tracker:
        tracker.record(model="gpt-4o", usage={"input_tokens": 10})
        assert tracker.flush(10)
    assert db.exists()
