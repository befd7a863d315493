"""A ledger file deleted or replaced under running processes: one ledger again, nothing lost.

Deleting the data folder while trackers run leaves each running process writing to its
unlinked ledger file, while a process started afterwards makes a new, empty one: each
would see only its own spend, and together they could spend a budget twice over. A
process notices within ``CHECK_FILE_EVERY`` seconds that its path names another file,
carries the old file's spend and holds into the new one (once, however many processes
had it open) and goes on there.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tokentrail import Tracker
from tokentrail.budget import ledger as ledger_module
from tokentrail.budget.ledger import Ledger, Slot

DAY = Slot("tokens|global|day|1|", expires=None)


@pytest.fixture(autouse=True)
def check_every_transaction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger_module, "CHECK_FILE_EVERY", 0.0)


def _spend(ledger: Ledger, amount: int) -> int:
    [(spent, _, _)] = ledger.settle(None, [(DAY, amount)], lambda i, s, w: w, now=0.0)
    return spent


def _spent(ledger: Ledger) -> tuple[int, int]:
    [seen] = ledger.read([DAY], now=0.0)
    return seen.spent, seen.reserved


def test_spend_of_the_deleted_file_is_carried_into_the_new_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "data" / "usage.duckdb.ledger.sqlite"
    first, second = Ledger(path), Ledger(path)  # two processes on the file
    _spend(first, 600)
    assert _spent(second) == (600, 0)
    shutil.rmtree(tmp_path / "data")
    newcomer = Ledger(path)  # started after the deletion: a new, empty file
    assert _spend(newcomer, 300) == 300
    with caplog.at_level(logging.WARNING, logger="tokentrail"):
        assert _spend(first, 50) == 950  # noticed: the old 600 came along
    assert "deleted or replaced" in caplog.text
    # The other process had the same old file open: its spend is not added twice.
    assert _spent(second) == (950, 0)
    assert _spent(newcomer) == (950, 0)


def test_spend_settled_in_the_old_file_after_another_process_carried_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "data" / "ledger.sqlite"
    first, second = Ledger(path), Ledger(path)
    _spend(first, 100)
    _spent(second)  # opens its connection on the old file
    shutil.rmtree(tmp_path / "data")
    assert _spend(first, 10) == 110  # first carries 100 into the new file
    # second settled in the old file before noticing: only that part is added.
    second._next_file_check = float("inf")
    assert _spend(second, 40) == 140
    second._next_file_check = 0.0
    assert _spent(second) == (150, 0)
    assert _spent(first) == (150, 0)


def test_holds_move_with_the_file_and_a_settled_one_does_not_linger(tmp_path: Path) -> None:
    path = tmp_path / "data" / "ledger.sqlite"
    ledger = Ledger(path)
    held = ledger.hold("r1", [DAY], [500], lambda seen: True, expires=1e12, now=0.0)
    assert held[1]
    for file in path.parent.glob(path.name + "*"):  # rm usage.duckdb*: the folder kept
        file.unlink()
    assert _spent(Ledger(path)) == (0, 0)
    assert _spent(ledger) == (0, 500)  # the hold came along
    ledger.settle("r1", [(DAY, 200)], lambda i, s, w: w, now=0.0)
    assert _spent(Ledger(path)) == (200, 0)


_CHILD = textwrap.dedent(
    """
    import sys
    from tokentrail import Tracker
    with Tracker(sys.argv[1]) as t:
        t.budget(tokens=1000, per="day", persist=False, warn_at=None)
        if sys.argv[2] != "0":
            t.record(model="gpt-4o-mini", usage={"input_tokens": int(sys.argv[2])})
        [status] = t.budget_status()
        print(status.spent)
    """
)


def _child(db: Path, tokens: int) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(db), str(tokens)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return int(done.stdout.split()[-1])


def test_a_process_started_after_the_folder_was_deleted_sees_the_spend(
    tmp_path: Path,
) -> None:
    db = tmp_path / "data" / "usage.duckdb"
    with Tracker(db) as t:
        t.budget(tokens=1000, per="day", persist=False, warn_at=None)
        t.record(model="gpt-4o-mini", usage={"input_tokens": 600})
        t.flush()
        shutil.rmtree(tmp_path / "data")
        assert _child(db, 300) == 300  # before the running process notices
        t.record(model="gpt-4o-mini", usage={"input_tokens": 50})
        [status] = t.budget_status()
        assert status.spent == 950
        assert _child(db, 0) == 950
