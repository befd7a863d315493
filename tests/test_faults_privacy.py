"""Files the store and the CLI create are private: 0600 files, 0700 folders.

The database holds user ids, session ids and metadata: another local user must not read
it, its spool, its exports, nor list the folders they live in.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tokentrail import Tracker
from tokentrail.cli import cli
from tokentrail.store.paths import resolve_db_path


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(autouse=True)
def _homes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("TOKENTRAIL_DB", raising=False)
    old = os.umask(0o022)  # the usual umask: what the process would create is 0644 / 0755
    try:
        yield
    finally:
        os.umask(old)


def test_the_default_database_its_folder_and_spool_are_private(tmp_path: Path) -> None:
    db = resolve_db_path()
    assert str(db).startswith(str(tmp_path))
    with Tracker() as tracker:
        tracker.record(model="gpt-4o", usage={"input_tokens": 1}, user_id="alice")
        spool = tracker.store._spool
        assert spool is not None
        assert _mode(spool.directory) == 0o700
        assert {_mode(p) for p in spool.directory.iterdir()} == {0o600}
        assert tracker.flush(10)
    assert _mode(db) == 0o600
    assert _mode(db.parent) == 0o700  # .../data/tokentrail, created by tokentrail
    assert _mode(db.parent.parent) == 0o700  # .../data, created by tokentrail too
    for leftover in db.parent.iterdir():
        if leftover.is_file():
            assert _mode(leftover) == 0o600, leftover


def test_a_database_in_a_new_folder_is_private(tmp_path: Path) -> None:
    db = tmp_path / "new" / "deeper" / "usage.duckdb"
    with Tracker(db) as tracker:
        tracker.record(model="gpt-4o", usage={"input_tokens": 1}, user_id="alice")
    assert _mode(db) == 0o600
    assert _mode(db.parent) == _mode(db.parent.parent) == 0o700


def test_exports_and_rewritten_files_are_private(tmp_path: Path) -> None:
    db = tmp_path / "usage.duckdb"
    with Tracker(db) as tracker:
        for user in ("alice", "bob"):
            tracker.record(model="gpt-4o", usage={"input_tokens": 1}, user_id=user)
    for fmt in ("csv", "parquet", "jsonl"):
        out = tmp_path / "exports" / f"usage.{fmt}"
        result = CliRunner().invoke(
            cli, ["--db", str(db), "export", "--format", fmt, "-o", str(out)]
        )
        assert result.exit_code == 0, result.output
        assert _mode(out) == 0o600
    assert _mode(tmp_path / "exports") == 0o700
    result = CliRunner().invoke(cli, ["--db", str(db), "forget", "--user", "bob", "--yes"])
    assert result.exit_code == 0, result.output
    assert _mode(db) == 0o600  # the rewritten file


def test_a_spool_folder_another_user_could_have_made_in_tmp_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tokentrail.store.paths import temp_spool_dir
    from tokentrail.store.segments import make_private_dir

    shared = tmp_path / "shared-tmp"
    shared.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(shared))
    spool = temp_spool_dir(tmp_path / "usage.duckdb")
    make_private_dir(spool)  # made by us: used, 0700 all the way down
    top = shared / spool.relative_to(shared).parts[0]
    assert _mode(top) == 0o700
    os.chmod(top, 0o777)  # as if another user had made it first, open to all
    with pytest.raises(PermissionError, match="not a private folder"):
        make_private_dir(spool)
