"""``otel_queue.Background``: items run in order on one thread; flush, close, restart, fork."""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest

from tokentrail.otel_queue import Background


def test_items_run_in_order_on_one_named_thread_and_flush_waits_for_them() -> None:
    seen: list[tuple[int, str]] = []

    def slow(item: int) -> None:
        time.sleep(0.01)
        seen.append((item, threading.current_thread().name))

    bg: Background[int] = Background(slow, "bg-test")
    for i in range(5):
        bg.put(i)
    assert bg.flush(10)
    assert seen == [(i, "bg-test") for i in range(5)]
    bg.close()


def test_a_failing_item_is_logged_and_the_next_ones_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[int] = []

    def work(item: int) -> None:
        if item == 1:
            raise ValueError("bad item")
        seen.append(item)

    bg: Background[int] = Background(work, "bg-fail")
    for i in range(3):
        bg.put(i)
    assert bg.flush(10)
    assert seen == [0, 2]
    assert "bg-fail failed" in caplog.text
    bg.close()


def test_flush_gives_up_at_its_timeout() -> None:
    gate = threading.Event()
    bg: Background[int] = Background(lambda _: gate.wait(10), "bg-blocked")
    bg.put(1)
    assert bg.flush(0.05) is False
    gate.set()
    assert bg.flush(10) is True
    bg.close()


def test_close_ends_the_thread_and_a_later_put_starts_a_new_one() -> None:
    seen: list[int] = []
    bg: Background[int] = Background(seen.append, "bg-close")
    bg.put(1)
    assert bg.close(10)
    time.sleep(0.05)
    assert "bg-close" not in {t.name for t in threading.enumerate()}
    bg.put(2)
    assert bg.flush(10)
    assert seen == [1, 2]
    bg.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX only")
def test_a_forked_child_runs_its_own_items() -> None:
    read, write = os.pipe()

    def work(item: int) -> None:
        os.write(write, f"{os.getpid()}:{item}\n".encode())

    bg: Background[int] = Background(work, "bg-fork")
    bg.put(1)
    assert bg.flush(10)
    pid = os.fork()
    if pid == 0:  # the child: its put must run although the parent's thread is not here
        code = 0
        try:
            bg.put(2)
            code = 0 if bg.flush(5) else 3
        except BaseException:
            code = 4
        finally:
            sys.stdout.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    os.close(write)
    lines = os.read(read, 1000).decode().split()
    os.close(read)
    assert os.waitstatus_to_exitcode(status) == 0
    assert lines == [f"{os.getpid()}:1", f"{pid}:2"]
    bg.close()
