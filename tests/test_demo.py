"""``tokentrail demo`` and the in-process demo models, through the real integrations."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner
from langchain_core.messages import HumanMessage, SystemMessage

from tokentrail import demo_data
from tokentrail.cli import cli
from tokentrail.integrations.demo_models import DemoChatModel, DemoLLM

LONG_SYSTEM = "Policy: answer briefly and cite the docs. " * 200


def test_demo_chat_model_reports_usage_and_cache_reads() -> None:
    model = DemoChatModel(model_name="gpt-4o-mini", delay=0)
    messages = [SystemMessage(LONG_SYSTEM), HumanMessage("How do I export?")]
    first = model.invoke(messages).usage_metadata
    second = model.invoke(messages).usage_metadata
    assert first is not None and second is not None
    assert first["input_tokens"] > 1024 and first["output_tokens"] > 0
    assert first["input_token_details"]["cache_read"] == 0
    cached = second["input_token_details"]["cache_read"]
    assert cached > 1024 and cached % 128 == 0 and cached <= second["input_tokens"]


def test_demo_llm_raw_is_openai_shaped() -> None:
    llm = DemoLLM(delay=0)
    raw = llm.complete("Context: " + "x " * 10 + "Query: hi").raw
    assert raw["model"] == "gpt-4o-mini-2024-07-18"
    usage = raw["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    streamed = list(llm.stream_complete("Query: hi"))
    assert streamed[-1].raw["usage"]["completion_tokens"] > 0


def test_demo_data_is_deterministic_and_shaped() -> None:
    end = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)
    a = list(demo_data.demo_records(7, end=end))
    b = list(demo_data.demo_records(7, end=end))
    assert [(r.ts, r.model, r.usage) for r in a] == [(r.ts, r.model, r.usage) for r in b]
    assert all(r.ts < end for r in a)
    assert {r.operation for r in a} >= {"chat", "embed", "rag-answer", "summarize"}
    assert any(r.usage.cache_read_tokens for r in a)
    assert any(r.status == "error" for r in a)


def test_demo_command_records_both_frameworks_and_the_guard_refuses(tmp_path: Path) -> None:
    db = tmp_path / "demo.duckdb"
    result = CliRunner().invoke(cli, ["demo", "--db", str(db), "--days", "2", "--json"])
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.output)
    assert outcome["history_calls"] > 100
    assert outcome["budget"]["sent"] >= 1
    assert "budget exceeded for user 'intern'" in outcome["budget"]["refused"]
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = dict(
            con.execute(
                "SELECT framework, count(*) FROM usage WHERE list_contains(tags, 'demo') "
                "AND user_id IN ('alice', 'bob', 'carol', 'intern') "
                "AND operation IN ('support-chat', 'docs-qa', 'embedding') GROUP BY 1"
            ).fetchall()
        )
        assert rows["langchain"] == 5 + outcome["budget"]["sent"]
        assert rows["llamaindex"] >= 3
        cached, priced = con.execute(
            "SELECT sum(cache_read_tokens), count(total_cost) FROM usage "
            "WHERE operation = 'support-chat'"
        ).fetchone()
        assert cached > 0 and priced == rows["langchain"]
    finally:
        con.close()


def test_demo_prints_the_report(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "d.duckdb"), "demo"])
    assert result.exit_code == 0, result.output
    assert "LangChain" in result.output and "LlamaIndex" in result.output
    assert "BudgetExceededError" in result.output
    assert "tokentrail report" in result.output and "support-chat" in result.output


def test_demo_restores_logging_levels(tmp_path: Path) -> None:
    import logging

    before = logging.getLogger("tokentrail").level
    result = CliRunner().invoke(cli, ["demo", "--db", str(tmp_path / "l.duckdb"), "--json"])
    assert result.exit_code == 0, result.output
    assert logging.getLogger("tokentrail").level == before


def test_demo_uses_its_own_database_and_runs_the_same_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    real = tmp_path / "real.duckdb"
    monkeypatch.setenv("TOKENTRAIL_DB", str(real))  # the user's database: the demo leaves it be
    outcomes = []
    for _ in range(2):
        result = CliRunner().invoke(cli, ["demo", "--json"])
        assert result.exit_code == 0, result.output
        outcomes.append(json.loads(result.output))
    demo_db = tmp_path / "data" / "tokentrail" / "demo.duckdb"
    assert outcomes[0]["database"] == outcomes[1]["database"] == str(demo_db)
    assert outcomes[0]["budget"]["sent"] == outcomes[1]["budget"]["sent"] >= 1
    assert not real.exists() and not list(tmp_path.glob("real.duckdb*"))
    con = duckdb.connect(str(demo_db), read_only=True)
    try:  # made anew: only the second run's calls are there
        (chat_calls,) = con.execute(
            "SELECT count(*) FROM usage WHERE operation = 'support-chat'"
        ).fetchone()
    finally:
        con.close()
    assert chat_calls == 5 + outcomes[1]["budget"]["sent"]


def test_demo_writes_into_a_database_named_on_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    chosen = tmp_path / "chosen.duckdb"
    result = CliRunner().invoke(cli, ["--db", str(chosen), "demo", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["database"] == str(chosen)
    assert not (tmp_path / "data" / "tokentrail" / "demo.duckdb").exists()
