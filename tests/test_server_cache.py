"""The server's answer cache: reuse for ttl, then while the data is unchanged; one
computation for concurrent askers; errors never cached."""

from __future__ import annotations

import threading
import time

import pytest

from tokentrail.server.cache import TTLCache


def test_an_answer_is_reused_within_ttl_and_recomputed_after() -> None:
    cache = TTLCache(ttl=0.2)
    calls: list[int] = []
    assert cache.get("k", lambda: calls.append(1) or len(calls)) == 1
    assert cache.get("k", lambda: calls.append(1) or len(calls)) == 1
    time.sleep(0.25)
    assert cache.get("k", lambda: calls.append(1) or len(calls)) == 2


def test_after_ttl_an_unchanged_stamp_reuses_and_a_changed_one_recomputes() -> None:
    version = [1]
    cache = TTLCache(ttl=0.05, stamp=lambda: version[0], max_age=30)
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    assert cache.get("k", compute) == 1
    time.sleep(0.08)
    assert cache.get("k", compute) == 1  # data unchanged
    version[0] = 2
    time.sleep(0.08)
    assert cache.get("k", compute) == 2  # data changed


def test_max_age_bounds_reuse_of_unchanged_data() -> None:
    cache = TTLCache(ttl=0.02, stamp=lambda: "same", max_age=0.1)
    calls: list[int] = []
    cache.get("k", lambda: calls.append(1))
    time.sleep(0.15)
    cache.get("k", lambda: calls.append(1))
    assert len(calls) == 2


def test_concurrent_askers_share_one_computation() -> None:
    cache = TTLCache(ttl=5)
    started = threading.Event()
    calls: list[int] = []

    def slow() -> str:
        calls.append(1)
        started.set()
        time.sleep(0.3)
        return "answer"

    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get("k", slow))) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["answer"] * 8
    assert len(calls) == 1


def test_errors_are_raised_to_every_waiter_and_not_cached() -> None:
    cache = TTLCache(ttl=5)

    def boom() -> None:
        raise ValueError("bad since")

    with pytest.raises(ValueError, match="bad since"):
        cache.get("k", boom)
    assert cache.get("k", lambda: "ok") == "ok"


def test_changed_data_serves_the_previous_answer_while_one_refresh_runs() -> None:
    version = [1]
    cache = TTLCache(ttl=0.01, stamp=lambda: version[0], stale_for=5)
    release = threading.Event()
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        if len(calls) > 1:
            release.wait(5)
        return len(calls)

    try:
        assert cache.get("k", compute) == 1
        version[0] = 2
        time.sleep(0.02)
        # Three asks during the refresh: the old answer at once, said to be stale.
        assert [cache.fetch("k", compute) for _ in range(3)] == [(1, True)] * 3
        release.set()
        deadline = time.monotonic() + 5
        while cache.fetch("k", compute) != (2, False):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert len(calls) == 2  # one recomputation for all the asks
    finally:
        cache.close()


def test_an_answer_older_than_stale_for_is_recomputed_in_the_request() -> None:
    version = [1]
    cache = TTLCache(ttl=0.01, stamp=lambda: version[0], stale_for=0.05)
    calls: list[int] = []
    assert cache.get("k", lambda: calls.append(1) or len(calls)) == 1
    version[0] = 2
    time.sleep(0.08)
    assert cache.get("k", lambda: calls.append(1) or len(calls)) == 2
