"""Child-process bodies for the reliability suite (``tests/test_reliability_*``, ``tests/soak``).

Kept apart from the test modules so a ``multiprocessing`` forkserver can preload them
(with tokentrail, DuckDB and the price catalog) once: each chaos run then forks a ready
process in milliseconds instead of paying a fresh interpreter start. The children are
real processes writing real files; the tests kill them with SIGKILL.

Nothing here imports pytest.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

import tokentrail
from tokentrail import Tracker
from tokentrail.pricing import cost as _cost

__all__ = [
    "MODEL",
    "forkserver",
    "record_forever",
    "record_n",
    "usage_for",
]

MODEL = "gpt-4o-mini"
# Warm the catalog in the forkserver so children price their first call at full speed.
_cost(MODEL, input_tokens=1, output_tokens=1)
assert tokentrail.Tracker is Tracker


def usage_for(i: int) -> dict[str, int]:
    """The token counts of call ``i`` (varied so sums catch a lost or doubled row)."""
    return {"input_tokens": 10 + i % 97, "output_tokens": 5 + i % 13}


class _CountWarnings(logging.Handler):
    """Appends every tokentrail warning or error to a file (one line each)."""

    def __init__(self, path: str) -> None:
        super().__init__(logging.WARNING)
        self.path = path

    def emit(self, record: logging.LogRecord) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(record.getMessage().replace("\n", " ") + "\n")


def _watch_warnings(path: str | None) -> None:
    if path:
        logging.getLogger("tokentrail").addHandler(_CountWarnings(path))


def record_forever(
    db: str, ids_path: str, tag: str, interval: float, segment_rows: int, limit: int
) -> None:
    """Record calls until killed; after each ``record()`` returns, append its id to ``ids_path``.

    The id line is written with one unbuffered ``os.write``, so once the parent can read a
    line, the record it names was returned to the caller before the kill.
    """
    tracker = Tracker(db)
    store = tracker.store
    store.interval = interval  # small batches: kills land inside DuckDB writes too
    store.max_delay = interval  # (a batch per look, however few records wait)
    store.segment_rows = segment_rows  # read when the first spool segment opens
    fd = os.open(ids_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    for i in range(limit):
        rec = tracker.record(
            model=MODEL,
            usage=usage_for(i),
            request_id=f"{tag}:{i}",
            user_id=f"u{i % 7}",
            tags=["chaos"],
            metadata={"i": i},
        )
        os.write(fd, f"{tag}:{i} {rec.id}\n".encode())
    os.close(fd)
    time.sleep(60)  # reached only when the parent is too slow to kill; it kills anyway


def record_n(
    db: str,
    n: int,
    tag: str,
    interval: float,
    segment_rows: int,
    warnings_path: str | None = None,
    pause_every: int = 0,
) -> None:
    """Record ``n`` calls tagged ``tag:i`` and close the tracker (the normal exit path)."""
    _watch_warnings(warnings_path)
    tracker = Tracker(db)
    tracker.store.interval = tracker.store.max_delay = interval
    tracker.store.segment_rows = segment_rows
    for i in range(n):
        tracker.record(model=MODEL, usage=usage_for(i), request_id=f"{tag}:{i}")
        if pause_every and i % pause_every == pause_every - 1:
            time.sleep(0.001)  # let the batches of the 8 writers interleave
    tracker.close()


_CONTEXT: list[Any] = []


def forkserver() -> Any:
    """The multiprocessing context whose server has tokentrail and this module loaded."""
    if not _CONTEXT:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([__name__])
        _CONTEXT.append(ctx)
    return _CONTEXT[0]


def spool_segments(db: str | Path) -> list[Path]:
    """Every spool segment left for ``db`` (primary and fallback spool directories)."""
    from tokentrail.store.paths import spool_dirs
    from tokentrail.store.segments import SEGMENT_SUFFIX

    found: list[Path] = []
    for directory in spool_dirs(Path(db)):
        if directory.is_dir():
            found.extend(sorted(directory.glob(f"*{SEGMENT_SUFFIX}")))
    return found


# ---------------------------------------------------------------------- bad storage
CAP_DAC_OVERRIDE = 1
CAP_DAC_READ_SEARCH = 2


def drop_file_capabilities() -> None:
    """Make a root process obey file permissions (drop CAP_DAC_OVERRIDE/READ_SEARCH).

    A root process ignores ``chmod``; after this it is bound by permission bits like any
    user (it stays the owner of what root owns). No-op for other users.
    """
    if os.geteuid() != 0:
        return
    import ctypes
    import ctypes.util

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [
            ("effective", ctypes.c_uint32),
            ("permitted", ctypes.c_uint32),
            ("inheritable", ctypes.c_uint32),
        ]

    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    header = Header(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (Data * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    mask = ~((1 << CAP_DAC_OVERRIDE) | (1 << CAP_DAC_READ_SEARCH)) & 0xFFFFFFFF
    data[0].effective &= mask
    data[0].permitted &= mask
    data[0].inheritable &= mask
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def record_through_bad_storage(db: str, state_dir: str, n: int, conn: Any) -> None:
    """Record ``n`` calls on unusable storage, report, wait for the fix, flush, report.

    Runs without file-permission capabilities. Sends two dicts on ``conn``: after the
    first ``n`` calls (``flushed``: did a flush succeed, ``warnings``, ``slowest_ms``,
    ``raised``), then after the parent says the storage is fixed.
    """
    import tokentrail.store.writer  # noqa: F401  (imported before privileges drop)

    drop_file_capabilities()
    os.environ["XDG_STATE_HOME"] = state_dir
    collect = _Collect()
    logging.getLogger("tokentrail").addHandler(collect)
    raised: list[str] = []
    slowest = 0.0
    tracker = Tracker(db)
    for i in range(n):
        t0 = time.perf_counter()
        try:
            tracker.record(model=MODEL, usage=usage_for(i), request_id=f"bad:{i}")
        except Exception as exc:  # the promise under test: this never happens
            raised.append(repr(exc))
        slowest = max(slowest, time.perf_counter() - t0)
    flushed = tracker.flush(2.0)
    conn.send(
        {
            "flushed": flushed,
            "warnings": list(collect.messages),
            "slowest_ms": slowest * 1000,
            "raised": raised,
            "pending": tracker.store.pending(),
        }
    )
    conn.recv()  # the parent fixed the storage
    flushed = tracker.flush(30.0)
    tracker.close()
    conn.send({"flushed": flushed, "warnings": list(collect.messages)})
