"""Prompt and response text never reach the database, the spool or the exports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from click.testing import CliRunner

from tests.wire import Reply, WireServer

PROMPT_SECRET = "PROMPT-SECRET-7f3a9c"
ANSWER_SECRET = "ANSWER-SECRET-2b8e1d"


def _files_under(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()]


def test_no_prompt_or_response_text_is_written_anywhere(
    tmp_path: Path, wire_server: WireServer, chat_openai: Any
):
    from langchain_core.messages import HumanMessage, SystemMessage

    import tokentrail
    from tokentrail.cli import cli

    wire_server.set_default(Reply(text=f"the answer is {ANSWER_SECRET}", input_tokens=30))
    db = tmp_path / "data" / "usage.duckdb"
    with tokentrail.Tracker(db) as tracker:
        handler = tracker.langchain(user_id="u1", operation="chat")
        messages = [SystemMessage("be brief"), HumanMessage(f"tell me {PROMPT_SECRET}")]
        llm = chat_openai()
        llm.invoke(messages, config={"callbacks": [handler]})
        for _chunk in llm.stream(messages, config={"callbacks": [handler]}):
            pass
        tracker.record(model="gpt-4o", usage={"input_tokens": 5, "output_tokens": 1})
        assert tracker.flush()
        # The text really went through the call (so the check below can fail).
        assert any(PROMPT_SECRET in str(b) for b in wire_server.bodies("/v1/chat/completions"))
        export = tmp_path / "export.jsonl"
        result = CliRunner().invoke(
            cli, ["--db", str(db), "export", "--format", "jsonl", "-o", str(export)]
        )
        assert result.exit_code == 0, result.output
    from tokentrail.store import reading

    with reading(db) as con:
        as_text = con.execute("SELECT CAST(u AS VARCHAR) FROM usage AS u").fetchall()
    assert len(as_text) == 3
    assert all("SECRET" not in row[0] and "be brief" not in row[0] for row in as_text)
    assert sum("u1" in row[0] for row in as_text) == 2  # the rows do render their text
    written = [*_files_under(tmp_path / "data"), export]
    assert len(written) >= 2
    for path in written:
        data = path.read_bytes()
        assert PROMPT_SECRET.encode() not in data, path
        assert ANSWER_SECRET.encode() not in data, path
        assert b"be brief" not in data, path
