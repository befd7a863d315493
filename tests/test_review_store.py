"""Review findings in the store: each test reproduces a bug that was fixed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tokentrail.store import spool


def test_writer_starting_while_another_process_scans_keeps_its_segments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scan that runs between a new writer creating its lock file and locking it
    removes that lock file (it looks like one left by a writer that exited). The writer
    must not end up holding a lock on a removed file: its segments would then look
    orphaned to every other process, which would store them (and delete the segment it is
    still appending to) while it is alive."""
    directory = tmp_path / "usage.duckdb.spool"
    directory.mkdir()
    real_lock = spool._lock
    scanned: list[int] = []

    def lock_after_a_scan(fd: int, blocking: bool) -> bool:
        if blocking and not scanned:
            scanned.append(1)
            # Another process's orphan scan lands in the window (own tokens: none).
            for claim in spool.claim_orphans(directory, set()):
                claim.release()
        return real_lock(fd, blocking)

    monkeypatch.setattr(spool, "_lock", lock_after_a_scan)
    writer = spool.SpoolWriter(directory, max_rows=100)
    monkeypatch.setattr(spool, "_lock", real_lock)
    try:
        writer.append(b'["x"]\n')
        claimed: list[Any] = []
        for claim in spool.claim_orphans(directory, set()):
            claimed.append(claim.token)
            claim.release()
        assert writer.token not in claimed
    finally:
        writer.close()


def test_report_shows_no_dollar_figure_for_a_model_without_a_price(tmp_path: Path) -> None:
    """A model whose calls are all unpriced has an unknown cost, not $0.00."""
    from click.testing import CliRunner

    from tokentrail import Tracker
    from tokentrail.cli import cli

    db = tmp_path / "usage.duckdb"
    with Tracker(db) as tracker:
        tracker.record(
            model="gpt-4o", provider="openai", usage={"input_tokens": 1000, "output_tokens": 10}
        )
        tracker.record(
            model="no-such-model-xyz",
            provider="openai",
            usage={"input_tokens": 1000, "output_tokens": 10},
        )
    for args in (["report"], ["report", "--by", "model"], ["top", "--by", "model"]):
        result = CliRunner().invoke(cli, ["--db", str(db), *args])
        assert result.exit_code == 0, result.output
        line = next(x for x in result.output.splitlines() if x.startswith("no-such-model-xyz"))
        assert "$0" not in line, (args, line)
        assert "—" in line, (args, line)
        priced = next(x for x in result.output.splitlines() if x.startswith("gpt-4o "))
        assert "$" in priced, (args, priced)
