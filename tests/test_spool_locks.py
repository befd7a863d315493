"""A spool writer's lock tells other processes it is alive, whatever they do meanwhile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tokentrail.store import locks
from tokentrail.store.recovery import claim_orphans
from tokentrail.store.segments import SpoolWriter


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
    real_lock = locks.lock
    scanned: list[int] = []

    def lock_after_a_scan(fd: int, blocking: bool) -> bool:
        if blocking and not scanned:
            scanned.append(1)
            # Another process's orphan scan lands in the window (own tokens: none).
            for claim in claim_orphans(directory, set()):
                claim.release()
        return real_lock(fd, blocking)

    monkeypatch.setattr(locks, "lock", lock_after_a_scan)
    writer = SpoolWriter(directory, max_rows=100)
    monkeypatch.setattr(locks, "lock", real_lock)
    try:
        writer.append(b'["x"]\n')
        claimed: list[Any] = []
        for claim in claim_orphans(directory, set()):
            claimed.append(claim.token)
            claim.release()
        assert writer.token not in claimed
    finally:
        writer.close()
