"""``forget`` rewrites the database file while another tracker keeps writing to it.

The rewrite copies the file and renames the copy over it: a batch that landed in the old
file after the copy would be lost. DuckDB's own lock keeps writers out while the copy is
made; the store lock (shared by batches, exclusive for the rewrite) also covers the
moment between the rename and closing the old file, which this test rarely reaches: it
checks the whole, that every record stored while forget runs survives.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tokentrail import Tracker
from tokentrail.store import reading
from tokentrail.store.maintenance import forget


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


def test_forget_while_a_tracker_writes_loses_none_of_its_records(tmp_path: Path) -> None:
    db = tmp_path / "usage.duckdb"
    with Tracker(db) as setup:
        for i in range(300):
            setup.record(model="gpt-4o", usage={"input_tokens": 1}, user_id=f"gone-{i % 3}")
    writer = Tracker(db)
    writer.store.interval = writer.store.max_delay = 0.01  # a batch at every look
    done = threading.Event()

    def record() -> None:
        for i in range(3000):
            writer.record(
                model="gpt-4o", usage={"input_tokens": 1}, user_id="kept", request_id=str(i)
            )
        done.set()

    thread = threading.Thread(target=record)
    thread.start()
    forgotten = [forget(db, f"gone-{n}") for n in range(3)]
    thread.join()
    assert writer.flush(60)
    writer.close()
    assert forgotten == [100, 100, 100]
    with reading(db) as con:
        rows = con.execute(
            "SELECT count(*), count(DISTINCT request_id) FROM usage WHERE user_id = 'kept'"
        ).fetchone()
        left = con.execute("SELECT count(*) FROM usage WHERE user_id LIKE 'gone-%'").fetchone()
    assert rows == (3000, 3000)
    assert left == (0,)
