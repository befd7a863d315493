"""Estimated counts are visible: one warning with the fix, and "~" in the reports."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.wire import WireServer
from tokentrail import Tracker
from tokentrail.cli import cli


def test_a_stream_without_usage_warns_once_per_model_with_the_fix(
    tracker: Any,
    captured: list[Any],
    wire_server: WireServer,
    chat_openai: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from tokentrail.integrations.langchain import results

    results._WARNED_STREAMS.clear()
    wire_server.set_default(text="a b c", input_tokens=9, output_tokens=3)
    llm = chat_openai()  # a custom base_url: ChatOpenAI sends no stream_options
    with caplog.at_level(logging.WARNING, logger="tokentrail"):
        for _ in range(3):
            list(llm.stream("hi", config={"callbacks": [tracker.langchain()]}))
    assert [r.estimated for r in captured] == [True, True, True]
    warned = [r.getMessage() for r in caplog.records if "reported no token usage" in r.getMessage()]
    assert len(warned) == 1
    assert "stream_usage=True" in warned[0] and '"include_usage": True' in warned[0]
    assert "gpt-4o-mini" in warned[0]


def _db(tmp_path: Path) -> Path:
    path = tmp_path / "usage.duckdb"
    with Tracker(path) as tracker:
        tracker.record(model="gpt-4o-mini", usage={"input_tokens": 100, "output_tokens": 10})
        tracker.record(
            model="gpt-4o-mini", usage={"input_tokens": 50, "output_tokens": 5}, estimated=True
        )
        tracker.record(model="claude-haiku-4-5", usage={"input_tokens": 10, "output_tokens": 1})
    return path


def _run(db: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--db", str(db), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_the_cli_report_marks_estimated_figures(tmp_path: Path) -> None:
    db = _db(tmp_path)
    out = _run(db, "report")
    assert "of calls estimated" in out and "~33.3%" in out
    mini = next(line for line in out.splitlines() if line.startswith("gpt-4o-mini "))
    haiku = next(line for line in out.splitlines() if line.startswith("claude-haiku-4-5 "))
    assert "~165" in mini  # 110 + 55 tokens, one of the two calls estimated
    assert "~" not in haiku
    assert "stream_usage=True" in out
    by_model = _run(db, "report", "--by", "model")
    assert "~150" in by_model and "stream_usage=True" in by_model
    rows = {r["model"]: r for r in json.loads(_run(db, "report", "--by", "model", "--json"))}
    assert rows["gpt-4o-mini"]["estimated_calls"] == 1
    assert rows["claude-haiku-4-5"]["estimated_calls"] == 0


def test_a_report_without_estimates_has_no_marks(tmp_path: Path) -> None:
    path = tmp_path / "usage.duckdb"
    with Tracker(path) as tracker:
        tracker.record(model="gpt-4o-mini", usage={"input_tokens": 100, "output_tokens": 10})
    out = _run(path, "report")
    assert "~" not in out and "estimated" not in out


def test_the_html_report_marks_estimated_figures(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    db = _db(tmp_path)
    page = tmp_path / "r.html"
    _run(db, "html", "-o", str(page))
    text = page.read_text()
    assert "~ marks estimated token counts (33.3% of calls)" in text
    assert "~50<" in text and "~5<" in text  # the estimated call: 50 in, 5 out
    assert "~176<" in text  # its user row: 110 + 55 + 11 tokens
    assert "stream_usage=True" in text and "LlamaIndex embedding" in text


def test_the_note_names_embeddings_among_the_causes(tmp_path: Path) -> None:
    """An embedding model's calls are estimated (LlamaIndex embeddings report no usage):
    the note under the report must not blame a stream alone."""
    path = tmp_path / "usage.duckdb"
    with Tracker(path) as tracker:
        tracker.record(
            model="text-embedding-3-small",
            usage={"input_tokens": 40},
            operation="embedding",
            estimated=True,
        )
    out = _run(path, "report")
    assert "~40" in out and "LlamaIndex embedding model" in out
