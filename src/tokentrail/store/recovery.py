"""Segments left by processes that died: found, claimed, and cut to their last record.

A writer is gone when its lock file can be locked (the kernel released the lock at its
death, see ``locks``) or was already removed. The process that takes the lock is the
only one that drains the dead writer's segments; a killed writer's segment may end with
a record cut short and the zero bytes it was allocated with, both removed before it is
read.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from . import locks
from .segments import LOCK_SUFFIX, SEGMENT_SUFFIX, token_of

__all__ = [
    "DAMAGED_SUFFIX",
    "Claim",
    "Damage",
    "claim_orphans",
    "cut_torn_tail",
    "inspect",
    "set_aside",
]

_BLOCK = 1 << 16
#: Appended to the name of a segment kept aside because parts of it could not be read.
DAMAGED_SUFFIX = ".damaged"


@dataclass(frozen=True)
class Damage:
    """What a segment holds, seen as bytes before it is stored: ``lines`` in all, the
    lines that are text but not records (one record each), and the bytes of binary junk
    (zeros of a torn page, garbage), whose records are judged by ``line_size``, the mean
    length of the good lines: a zeroed page takes its newlines with it, garbage adds some.
    """

    lines: int
    text_lines: int
    junk_lines: int
    junk_bytes: int
    line_size: float

    def lost_records(self, stored: int) -> int:
        """Records lost once ``stored`` were: every line that is not junk and was not
        stored, plus the records the junk bytes held."""
        unread = max(0, self.lines - self.junk_lines - stored)
        if not self.junk_bytes:
            return unread
        if not self.line_size:
            return unread + self.junk_lines
        return unread + max(1, round(self.junk_bytes / self.line_size))


def inspect(path: Path) -> Damage:
    """Look at a segment's lines without decoding them (one pass over its bytes)."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    text = junk = junk_bytes = good = good_bytes = 0
    for line in lines:
        if line[:2] == b'["' and line[-1:] == b"]" and b"\0" not in line:
            good += 1
            good_bytes += len(line) + 1
        elif _is_text(line):
            text += 1
        else:
            junk += 1
            junk_bytes += len(line) + 1
    return Damage(len(lines), text, junk, junk_bytes, good_bytes / good if good else 0.0)


def _is_text(line: bytes) -> bool:
    """A line of printable UTF-8 (a mangled record, not binary junk)."""
    try:
        return line.decode("utf-8").isprintable()
    except UnicodeDecodeError:
        return False


def set_aside(path: Path) -> Path:
    """Rename a damaged segment so it is kept as evidence and never read again."""
    aside = path.with_name(path.name + DAMAGED_SUFFIX)
    path.rename(aside)
    return aside


@dataclass
class Claim:
    """The segments of one dead writer, locked by this process until released."""

    token: str
    lock_path: Path
    lock_fd: int
    segments: list[Path] = field(default_factory=list)

    def release(self) -> None:
        """Remove the lock file when every segment is gone, then unlock."""
        if not any(p.exists() for p in self.segments):
            with contextlib.suppress(OSError):
                self.lock_path.unlink()
        with contextlib.suppress(OSError):
            os.close(self.lock_fd)


def claim_orphans(directory: Path, own_tokens: set[str]) -> Iterator[Claim]:
    """Lock and yield the segments of every writer in ``directory`` that is gone.

    Segments whose owner is alive are left alone; so are this process's (``own_tokens``).
    Lock files left without segments (a writer that exited before removing its own) are
    removed on the way.
    """
    try:
        names = os.listdir(directory)
    except OSError:
        return
    by_token: dict[str, list[Path]] = {}
    for name in names:
        if name.endswith(SEGMENT_SUFFIX):
            by_token.setdefault(token_of(name), []).append(directory / name)
    if not locks.CAN_LOCK:  # pragma: no cover - Windows
        return
    for token in sorted(by_token.keys() - own_tokens):
        claim = _claim(directory, token)
        if claim is not None:
            claim.segments = sorted(p for p in by_token[token] if p.exists())
            yield claim
    for name in names:
        token = name[: -len(LOCK_SUFFIX)]
        if name.endswith(LOCK_SUFFIX) and token not in by_token and token not in own_tokens:
            _remove_stale_lock(directory / name)


def _claim(directory: Path, token: str) -> Claim | None:
    """A claim on ``token``'s segments when its writer is gone (its lock is free)."""
    lock_path = directory / f"{token}{LOCK_SUFFIX}"
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    except OSError:
        return None
    if not locks.lock(fd, blocking=False):
        os.close(fd)
        return None
    return Claim(token, lock_path, fd)


def _remove_stale_lock(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
        if locks.lock(fd, blocking=False):
            path.unlink()
        os.close(fd)


def cut_torn_tail(path: Path) -> int:
    """Truncate a dead writer's segment after its last complete line.

    Returns the bytes of the record cut short, if any; the zero bytes a mapped segment
    was allocated with beyond its last record are removed too, without being counted.
    """
    size = path.stat().st_size
    if size == 0:
        return 0
    with path.open("rb+") as fh:
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return 0
        end = _data_end(fh, size)
        keep = _line_end(fh, end)
        fh.truncate(keep)
    return end - keep


def _data_end(fh: BinaryIO, size: int) -> int:
    """The offset just past the last byte that is not zero."""
    pos = size
    while pos > 0:
        start = max(0, pos - _BLOCK)
        fh.seek(start)
        data = fh.read(pos - start).rstrip(b"\0")
        if data:
            return start + len(data)
        pos = start
    return 0


def _line_end(fh: BinaryIO, end: int) -> int:
    """The offset just past the last newline before ``end`` (0 when there is none)."""
    pos = end
    while pos > 0:
        start = max(0, pos - _BLOCK)
        fh.seek(start)
        found = fh.read(pos - start).rfind(b"\n")
        if found >= 0:
            return start + found + 1
        pos = start
    return 0
