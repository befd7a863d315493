"""The server's reads take turns with other processes' writers (``ReadGate``)."""

from __future__ import annotations

import threading
import time

from tokentrail.server.gate import ReadGate


def _hammer(
    gate: ReadGate, seconds: float, log: list[tuple[float, float]], lock: threading.Lock
) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        with gate.reading():
            start = time.monotonic()
            time.sleep(0.03)  # one scan
            with lock:
                log.append((start, time.monotonic()))


def _run(gate: ReadGate, threads: int, seconds: float) -> list[tuple[float, float]]:
    log: list[tuple[float, float]] = []
    lock = threading.Lock()
    workers = [
        threading.Thread(target=_hammer, args=(gate, seconds, log, lock)) for _ in range(threads)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sorted(log)


def test_at_most_slots_reads_at_once() -> None:
    log = _run(ReadGate(slots=2, hold=10, pause=0.1), threads=6, seconds=0.5)
    for start, _end in log:
        assert sum(1 for s, e in log if s <= start < e) <= 2


def test_a_file_held_for_hold_seconds_is_left_free_for_pause_seconds() -> None:
    gate = ReadGate(slots=2, hold=0.3, pause=0.2)
    log = _run(gate, threads=6, seconds=1.5)
    gaps = []
    busy_until = log[0][1]
    for start, end in log[1:]:
        if start > busy_until:
            gaps.append(start - busy_until)
        busy_until = max(busy_until, end)
    assert gate.pauses >= 2
    assert sum(1 for g in gaps if g >= 0.19) >= 2  # writers got the file, twice or more
