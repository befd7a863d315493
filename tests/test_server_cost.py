"""What one dashboard refresh costs the database: scans counted by the service itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from tests.server_support import write_known_rows
from tokentrail import Tracker
from tokentrail.server.service import Query, UsageService


@pytest.fixture
def service(tmp_path: Path) -> Iterator[UsageService]:
    db = tmp_path / "usage.duckdb"
    with Tracker(db) as tracker:
        write_known_rows(tracker)
        tracker.budget(usd=5, per="day", scope="user")
    made = UsageService(db, cache_ttl=60)
    yield made
    made.close()


def _refresh(service: UsageService, user: str | None) -> None:
    """The requests the dashboard makes when new calls arrived."""
    q = Query(since="30d", user_id=user)
    service.stats(q).get()
    service.stats(Query(since="today", user_id=user)).get()
    service.by_period(q, "day").get()
    service.history(q, 25).get()
    service.projection(Query(user_id=user)).get()
    service.budgets(user).get()


def test_an_admin_refresh_is_nine_scans_and_one_per_budget(service: UsageService) -> None:
    _refresh(service, None)
    assert service.queries_run == 9 + 1
    _refresh(service, None)  # nothing changed: every answer comes from the cache
    assert service.queries_run == 10


def test_a_user_refresh_is_seven_scans_and_one_per_budget(service: UsageService) -> None:
    _refresh(service, "u1")
    assert service.queries_run == 7 + 1


def test_server_app_stays_the_factory_after_first_use(tmp_path: Path) -> None:
    import tokentrail.server

    first = tokentrail.server.app(tmp_path / "a.duckdb")
    second = tokentrail.server.app(tmp_path / "b.duckdb")  # a submodule must not shadow it
    assert first is not second
    assert callable(tokentrail.server.app)
