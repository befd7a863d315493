"""Shared fixtures: the loopback wire server, a tracker on a temporary database, clients.

* ``wire_server`` — a fresh :class:`tests.wire.WireServer` per test (see ``tests/wire``).
* ``tracker`` — a ``tokentrail.Tracker`` writing to ``tmp_path / "usage.duckdb"``, closed after.
* ``captured`` — the list of ``UsageRecord`` the ``tracker`` fixture captured (via ``subscribe``).
* ``chat_openai(**kw)`` / ``chat_anthropic(**kw)`` — real ``langchain-openai`` /
  ``langchain-anthropic`` chat models pointed at ``wire_server`` (no retries).
* ``openai_client`` / ``anthropic_client`` — the raw SDK clients pointed at ``wire_server``.
* ``rows(tracker)`` — helper: flush and read every ``usage`` row back from DuckDB as dicts.
* ``otel`` — the OpenTelemetry SDK's in-memory exporters behind the global providers, emptied
  for the test (see ``tests/otel_support.py``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.wire import Received, Reply, WireServer

__all__ = ["Received", "Reply", "WireServer", "read_rows"]

# No test may reach a real service: LangSmith tracing off, dummy keys for the SDKs.
os.environ["LANGSMITH_TRACING"] = "false"
os.environ["LANGCHAIN_TRACING_V2"] = "false"
os.environ.setdefault("OPENAI_API_KEY", "test")
os.environ.setdefault("ANTHROPIC_API_KEY", "test")


@pytest.fixture
def wire_server() -> Iterator[WireServer]:
    """A loopback server speaking the OpenAI and Anthropic wire formats."""
    server = WireServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def tracker(tmp_path: Any) -> Iterator[Any]:
    """A Tracker on a fresh DuckDB file in ``tmp_path``."""
    from tokentrail import Tracker

    t = Tracker(tmp_path / "usage.duckdb")
    try:
        yield t
    finally:
        t.close()


@pytest.fixture
def captured(tracker: Any) -> list[Any]:
    """Every record the ``tracker`` fixture captures, in order."""
    records: list[Any] = []
    tracker.subscribe(records.append)
    return records


def read_rows(
    tracker: Any, where: str = "", params: list[Any] | None = None
) -> list[dict[str, Any]]:
    """Flush ``tracker`` and return its ``usage`` rows (ordered by ``ts``, ``id``) as dicts."""
    from tokentrail.store import reading

    assert tracker.flush(10), "records were not written in time"
    with reading(tracker.path) as con:
        # ts comes back as a naive UTC timestamp: DuckDB needs pytz for aware ones.
        sql = f"SELECT * REPLACE (timezone('UTC', ts) AS ts) FROM usage {where} ORDER BY ts, id"
        cur = con.execute(sql, params or [])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


@pytest.fixture
def rows() -> Callable[..., list[dict[str, Any]]]:
    """``rows(tracker, where="", params=None)``: flushed ``usage`` rows as dicts."""
    return read_rows


@pytest.fixture
def otel() -> Any:
    """The in-memory span exporter and metric reader of the global OpenTelemetry providers
    (set once per process), with nothing left from earlier tests."""
    from tests.otel_support import collector

    found = collector()
    found.reset()
    return found


@pytest.fixture
def chat_openai(wire_server: WireServer) -> Callable[..., Any]:
    """Factory for ``langchain_openai.ChatOpenAI`` against the wire server."""

    def make(**kwargs: Any) -> Any:
        from langchain_openai import ChatOpenAI

        kwargs.setdefault("model", "gpt-4o-mini")
        kwargs.setdefault("max_retries", 0)
        return ChatOpenAI(base_url=wire_server.openai_base_url, api_key="test", **kwargs)

    return make


@pytest.fixture
def chat_anthropic(wire_server: WireServer) -> Callable[..., Any]:
    """Factory for ``langchain_anthropic.ChatAnthropic`` against the wire server."""

    def make(**kwargs: Any) -> Any:
        from langchain_anthropic import ChatAnthropic

        kwargs.setdefault("model", "claude-haiku-4-5")
        kwargs.setdefault("max_retries", 0)
        return ChatAnthropic(base_url=wire_server.anthropic_base_url, api_key="test", **kwargs)

    return make


@pytest.fixture
def openai_client(wire_server: WireServer) -> Any:
    """A raw ``openai.OpenAI`` client against the wire server."""
    import openai

    return openai.OpenAI(base_url=wire_server.openai_base_url, api_key="test", max_retries=0)


@pytest.fixture
def anthropic_client(wire_server: WireServer) -> Any:
    """A raw ``anthropic.Anthropic`` client against the wire server."""
    import anthropic

    return anthropic.Anthropic(
        base_url=wire_server.anthropic_base_url, api_key="test", max_retries=0
    )


@pytest.fixture
def llamaindex_left_clean() -> Iterator[None]:
    """The test must leave LlamaIndex uninstrumented (handles detached, calls finished)."""
    import gc

    from tests.llamaindex_support import installed
    from tokentrail.integrations.llamaindex_handlers import HUB

    gc.collect()  # a guarded LLM of an earlier test uninstalls once it is collected
    assert not installed(), "a previous test left tokentrail handlers installed"
    yield
    gc.collect()
    leftover = HUB.recorders
    for rec in leftover:  # clean up so one failure does not cascade
        rec.handles.clear()
        rec.track_depth = rec.callbacks = 0
        rec.calls.clear()
        rec.embeds.clear()
        HUB.settle_idle(rec)
    assert leftover == (), "recorders still in use after the test"
    assert not installed()


@pytest.fixture
def li_openai(wire_server: WireServer) -> Callable[..., Any]:
    """Factory for ``llama_index.llms.openai.OpenAI`` pointed at the wire server."""

    def make(**kwargs: Any) -> Any:
        from llama_index.llms.openai import OpenAI

        kwargs.setdefault("model", "gpt-4o-mini")
        return OpenAI(api_base=wire_server.openai_base_url, api_key="test", max_retries=0, **kwargs)

    return make


#: An OpenAI text-completion model (the legacy ``/v1/completions`` endpoint).
INSTRUCT = "gpt-3.5-turbo-instruct"


@pytest.fixture
def lc_completion(wire_server: WireServer) -> Callable[..., Any]:
    """Factory for ``langchain_openai.OpenAI`` (a text-completion LLM, ``on_llm_start``)
    pointed at the wire server."""

    def make(**kwargs: Any) -> Any:
        from langchain_openai import OpenAI

        kwargs.setdefault("model", INSTRUCT)
        return OpenAI(base_url=wire_server.openai_base_url, api_key="test", max_retries=0, **kwargs)

    return make


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    """A throwaway PostgreSQL cluster for the session (see ``tests/postgres_server.py``);
    skips where PostgreSQL is not installed (fails under TOKENTRAIL_REQUIRE_POSTGRES=1)."""
    import shutil

    from tests import postgres_server

    server = postgres_server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.folder, ignore_errors=True)


@pytest.fixture
def pg_url(postgres_server: Any, request: pytest.FixtureRequest) -> str:
    """The TCP URL of a fresh, empty database on ``postgres_server`` (one per test)."""
    import re
    import secrets

    name = re.sub(r"[^a-z0-9]", "_", request.node.name.lower())[:40] + "_" + secrets.token_hex(3)
    return str(postgres_server.create_database(name))
