"""Segment files: this process's spool, one record per line, written through a memory map.

Each process appends to its own *segment* files in ``<db>.spool/``, copying each record
into a shared memory map of the segment (or with one ``os.write`` where blocks cannot be
allocated up front), so a record survives the process being killed (SIGKILL) the moment
it was appended. A segment holds at most ``max_rows`` records; when full, or when the
background writer wants it, it is *rotated* (closed) and becomes ready to be copied into
DuckDB, after which it is deleted.

A segment is named ``<token>-<seq>.c<width>.jsonl``: the writer's token (its lock file is
``<token>.lock``, see ``locks``), a sequence number and the number of columns its rows
hold, so that a segment spooled before a column was added is still read right. Segments
of older versions carry no width: they hold the first :data:`LEGACY_WIDTH` columns.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import mmap
import os
import stat
import sys
import uuid
from pathlib import Path
from typing import Any, Literal

from ..records import COLUMNS
from .framing import decode
from .locks import CAN_LOCK, open_locked

__all__ = [
    "DURABILITY",
    "LEGACY_WIDTH",
    "LOCK_SUFFIX",
    "SEGMENT_SUFFIX",
    "Durability",
    "SpoolWriter",
    "make_private_dir",
    "read_segment",
    "run_sync",
    "segment_rows_estimate",
    "sync_dir",
    "token_of",
    "width_of",
]

logger = logging.getLogger("tokentrail")

SEGMENT_SUFFIX = ".jsonl"
LOCK_SUFFIX = ".lock"
#: Columns in a row of a segment whose name carries no width (written by 0.1 releases).
LEGACY_WIDTH = 39
# Mapped segments: bytes allocated per expected record (a usual line is 300-600 bytes;
# a segment whose lines run longer is closed when its bytes are used up). A process starts
# with small segments and doubles their size each time one fills up by bytes, so a process
# that records a few calls a second does not hold megabytes of disk it never uses.
_LINE_ESTIMATE = 640
_FIRST_SEGMENT_BYTES = 1 << 18
_MAP_SEGMENTS = hasattr(os, "posix_fallocate") and CAN_LOCK
# Pages of a mapped segment are made ready for writing this many bytes at a time, ahead of
# the records (``madvise(MADV_POPULATE_WRITE)``, Linux 5.14+; 23 where Python lacks the
# name): one system call per chunk instead of a page fault in the middle of a call for
# the first record on each page.
_POPULATE_BYTES = 1 << 16
_POPULATE_WRITE: int | None = getattr(
    mmap, "MADV_POPULATE_WRITE", 23 if sys.platform.startswith("linux") else None
)


#: When a spooled record reaches the disk itself, not only the page cache (which survives
#: the process being killed, not a power cut): ``interval`` (a background thread syncs
#: every :data:`~tokentrail.store.syncer.SYNC_EVERY` seconds), ``call`` (before ``append``
#: returns), ``os`` (when the kernel writes it back, ~30 s on Linux).
Durability = Literal["interval", "call", "os"]
DURABILITY: tuple[str, ...] = ("interval", "call", "os")
# Errors of a full disk (or a file-size limit): the next segment may find room again.
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_fdatasync = getattr(os, "fdatasync", os.fsync)
# Closed segments whose descriptor a writer keeps until they are stored (a backlog beyond
# this many segments is not protected against its files being deleted).
_HELD = 64


def make_private_dir(directory: Path) -> None:
    """Create ``directory`` and the missing folders above it, each 0700."""
    missing = []
    for folder in (directory, *directory.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700)
    if not directory.is_dir():
        raise NotADirectoryError(str(directory))
    _check_shared_parent(directory)


def _check_shared_parent(directory: Path) -> None:
    """Under the system temporary folder (shared by every user), the folder tokentrail
    made there must be this user's, private and not a link: another user could have made
    it first to read or swap spool files."""
    import tempfile

    if not hasattr(os, "getuid"):
        return
    top = Path(tempfile.gettempdir()) / f"tokentrail-{os.getuid()}"  # see paths.temp_spool_dir
    if top not in directory.parents:
        return
    info = os.lstat(top)
    if info.st_uid != os.getuid() or info.st_mode & 0o077 or not stat.S_ISDIR(info.st_mode):
        raise PermissionError(f"{top} is not a private folder of this user; not used")


def sync_dir(directory: Path) -> None:
    """Make the names in ``directory`` (a new segment's) durable; errors are ignored."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def token_of(name: str) -> str:
    """The writer token in a segment's file name."""
    return name[: -len(SEGMENT_SUFFIX)].rsplit("-", 1)[0]


def width_of(path: Path) -> int:
    """How many columns the rows of a segment hold (from its name)."""
    tag = path.name[: -len(SEGMENT_SUFFIX)].rpartition(".")[2]
    if tag[:1] == "c" and tag[1:].isdigit():
        return int(tag[1:])
    return LEGACY_WIDTH


class SpoolWriter:
    """This process's segments in one spool directory.

    ``append`` writes one record; ``rotate`` closes the segment being written and returns
    its path for the writer to ingest. Not thread-safe: the store serializes calls.

    A segment is written through a shared memory map of a file whose blocks were
    allocated up front (``posix_fallocate``): a record costs a copy into the page cache,
    no system call, and the kernel keeps what was copied when the process is killed
    however it dies. ``rotate`` truncates the file to what was written; a killed writer's
    segment keeps a tail of zero bytes, which ``recovery.cut_torn_tail`` removes with
    any record cut short. Where blocks cannot be allocated (no ``posix_fallocate``, a full
    disk), segments are written with one ``os.write`` per record instead: a store into a
    map whose blocks are missing would end the process.
    """

    def __init__(self, directory: Path, max_rows: int, durability: Durability = "os") -> None:
        self.directory = directory
        self.max_rows = max_rows
        self.durability = durability
        make_private_dir(directory)
        self.token = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._lock_path = directory / f"{self.token}{LOCK_SUFFIX}"
        self._lock_fd = open_locked(self._lock_path)
        self._seq = 0
        self._fd: int | None = None
        self._path: Path | None = None
        self._map: mmap.mmap | None = None
        self._pos = 0  # bytes written to the open segment
        self._capacity = 0  # bytes the map holds
        self._populated = 0  # bytes of the map made ready for writing (see _POPULATE_BYTES)
        self._populate_advice = _POPULATE_WRITE
        # Bytes to allocate for the next segment (grows up to max_rows lines).
        self._segment_bytes = min(_FIRST_SEGMENT_BYTES, max_rows * _LINE_ESTIMATE)
        self._mapping = _MAP_SEGMENTS
        self.rows = 0  # records in the open segment
        self.closed: list[tuple[Path, int]] = []  # full segments not yet handed over
        #: Records of an open segment whose file was removed (the spool folder deleted):
        #: read back from this process's descriptor for the store to write again.
        self.orphaned = b""
        # ``interval``: closed segments' descriptors, and whether the open segment and the
        # directory hold anything not synced yet (see ``sync_work``).
        self.unsynced: list[int] = []
        #: A descriptor of each closed segment not stored yet (up to :data:`_HELD`): if its
        #: file is deleted before it is stored, its records are read back from it.
        self.held: dict[Path, int] = {}
        self._dirty = False
        self._dir_dirty = False

    def append(self, data: bytes) -> None:
        """Write one framed record; a segment this closes (full) is added to ``closed``.

        Raises ``OSError`` when the record cannot be written (a full disk without a map):
        nothing of it is left in the segment, and the caller keeps it some other way.
        """
        end = self._pos + len(data)
        self._dirty = True
        if self._map is not None and end <= self._capacity and self.rows + 1 < self.max_rows:
            self._store_mapped(data)  # the usual case: a copy, the segment stays open
            if self.durability == "call":
                self._sync_open()
            return
        if self._map is not None and end > self._capacity:
            # The record does not fit: it starts the next segment, a larger one.
            self._segment_bytes = min(2 * self._segment_bytes, self.max_rows * _LINE_ESTIMATE)
            self._close_full()
        if self._fd is None:
            self._open(len(data))
        if self._map is not None:
            self._store_mapped(data)
        else:
            self._write_unmapped(data)
        if self.durability == "call":
            self._sync_open()
        if self.rows >= self.max_rows:
            self._close_full()

    def _sync_open(self) -> None:
        if self._fd is not None:
            _fdatasync(self._fd)
        if self._dir_dirty:
            self._dir_dirty = False
            sync_dir(self.directory)

    def sync_work(self) -> tuple[list[int], Path | None]:
        """What ``interval`` durability syncs now: descriptors (the caller fdatasyncs and
        closes each) and the directory, if a segment was created in it since."""
        fds, self.unsynced = self.unsynced, []
        if self._dirty and self._fd is not None:
            fds.append(os.dup(self._fd))
        self._dirty = False
        directory = self.directory if self._dir_dirty else None
        self._dir_dirty = False
        return fds, directory

    def release(self, path: Path) -> None:
        """The segment was stored (or given up): its held descriptor is closed."""
        fd = self.held.pop(path, None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def read_back(self, path: Path) -> bytes | None:
        """The records of a closed segment whose file was deleted, from its held
        descriptor; ``None`` when none was held (its records are lost)."""
        fd = self.held.pop(path, None)
        if fd is None:
            return None
        try:
            return _read_all(fd).rstrip(b"\0")
        except OSError:
            return None
        finally:
            with contextlib.suppress(OSError):
                os.close(fd)

    def removed(self) -> bool:
        """Whether the open segment's file was removed (its records live on only in this
        process's descriptor); ``rotate`` then reads them into :attr:`orphaned`."""
        if self._fd is None:
            return False
        try:
            return os.fstat(self._fd).st_nlink == 0
        except OSError:
            return False

    def ensure_home(self) -> None:
        """Recreate the directory and take the lock file again if they were removed: a
        writer without its lock file looks dead, and another process would claim its
        segments."""
        make_private_dir(self.directory)
        try:
            held, named = os.fstat(self._lock_fd), os.stat(self._lock_path)
            if (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino):
                return
        except OSError:
            pass
        with contextlib.suppress(OSError):
            os.close(self._lock_fd)
        self._lock_fd = open_locked(self._lock_path)

    def take_closed(self) -> list[tuple[Path, int]]:
        """The segments ``append`` closed since the last call, with their record counts."""
        closed, self.closed = self.closed, []
        return closed

    def rotate(self) -> Path | None:
        """Close the open segment; returns its path when it holds records."""
        fd, path, rows, buffer, used = self._fd, self._path, self.rows, self._map, self._pos
        self._fd = None
        self._path = None
        self._map = None
        self.rows = 0
        self._pos = 0
        if fd is None:
            return None
        gone = rows > 0 and os.fstat(fd).st_nlink == 0
        try:
            if gone:
                self.orphaned += bytes(buffer[:used]) if buffer is not None else _read_all(fd)
            if buffer is not None:
                buffer.close()
                with contextlib.suppress(OSError):  # a full disk: the zero tail stays
                    os.ftruncate(fd, used)  # the unwritten, allocated tail goes
        finally:
            if self.durability == "interval" and rows and not gone:
                self.unsynced.append(fd)  # synced (then closed) by the background thread
            else:
                os.close(fd)
        if gone:
            return None
        if rows and path is not None and len(self.held) < _HELD:
            with contextlib.suppress(OSError):
                self.held[path] = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        if rows == 0 and path is not None:
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        return path

    def close(self) -> None:
        """Sync what is not yet (``interval``), release the lock; the lock file is removed
        when no segment is left."""
        self.rotate()
        fds, directory = self.sync_work()
        run_sync(fds, directory)
        for path in list(self.held):
            self.release(path)
        if self._lock_fd >= 0:
            if not any(self.directory.glob(f"{self.token}-*{SEGMENT_SUFFIX}")):
                with contextlib.suppress(OSError):
                    self._lock_path.unlink()
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)
            self._lock_fd = -1

    def forget_after_fork(self) -> None:
        """In a forked child: drop the parent's descriptors without touching its files."""
        if self._map is not None:
            with contextlib.suppress(Exception):
                self._map.close()  # the child's view only; the parent's map is its own
        for fd in (self._fd, self._lock_fd, *self.unsynced, *self.held.values()):
            if fd is not None and fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._map = None
        self._fd = None
        self._lock_fd = -1
        self.unsynced = []
        self.held = {}

    # ------------------------------------------------------------------ one segment
    def _open(self, need: int) -> None:
        self._seq += 1
        name = f"{self.token}-{self._seq:08d}.c{len(COLUMNS)}{SEGMENT_SUFFIX}"
        path = self.directory / name
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        try:
            self._fd = os.open(path, flags, 0o600)
        except FileNotFoundError:  # the spool folder was deleted: make it again
            self.ensure_home()
            self._fd = os.open(path, flags, 0o600)
        self._dir_dirty = self.durability != "os"
        self._path = path
        self.rows = 0
        self._pos = 0
        if self._mapping:
            self._map_segment(self._fd, need)

    def _map_segment(self, fd: int, need: int) -> None:
        size = max(self._segment_bytes, need + 1)
        size = -(-size // mmap.PAGESIZE) * mmap.PAGESIZE
        try:
            os.posix_fallocate(fd, 0, size)
            self._map = mmap.mmap(fd, size, flags=mmap.MAP_SHARED)
        except (OSError, ValueError) as exc:
            # Unsupported here, or the disk is full: this segment is written with os.write
            # (a full disk may have room again for the next one).
            logger.debug("tokentrail: spool segments not mapped (%s)", exc)
            if not (isinstance(exc, OSError) and exc.errno in _NO_SPACE):
                self._mapping = False
            self._map = None
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            return
        self._capacity = size
        self._populated = 0

    def _store_mapped(self, data: bytes) -> None:
        buffer = self._map
        assert buffer is not None
        start = self._pos
        end = start + len(data)
        if end > self._populated:
            self._populate(end)
        buffer[start : end - 1] = data[:-1]
        buffer[end - 1] = 10  # the newline last: a line that has one is complete
        self._pos = end
        self.rows += 1

    def _populate(self, end: int) -> None:
        """Make the map's pages ready for writing up to ``end`` and a chunk beyond."""
        start = self._populated  # a multiple of the page size
        stop = min(self._capacity, max(end, start + _POPULATE_BYTES))
        stop = -(-stop // mmap.PAGESIZE) * mmap.PAGESIZE
        self._populated = stop
        advice = self._populate_advice
        if advice is None or self._map is None:
            return
        try:
            self._map.madvise(advice, start, stop - start)
        except (OSError, ValueError):
            # An older kernel: pages fault in one by one as records reach them.
            self._populate_advice = None

    def _write_unmapped(self, data: bytes) -> None:
        fd = self._fd
        assert fd is not None
        written = os.write(fd, data)
        if written != len(data):
            # Short write (disk full): cut the partial record off so the segment stays
            # readable, and let the caller keep this record some other way.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, os.lseek(fd, 0, os.SEEK_END) - written)
            raise OSError(f"short write to the spool ({written} of {len(data)} bytes)")
        self.rows += 1

    def _close_full(self) -> None:
        rows = self.rows
        path = self.rotate()
        if path is not None:
            self.closed.append((path, rows))


def run_sync(fds: list[int], directory: Path | None) -> None:
    """fdatasync and close each descriptor of :meth:`SpoolWriter.sync_work`, then the
    directory; errors are ignored (the data stays in the page cache, as with ``os``)."""
    for fd in fds:
        with contextlib.suppress(OSError):
            _fdatasync(fd)
        with contextlib.suppress(OSError):
            os.close(fd)
    if directory is not None:
        sync_dir(directory)


def _read_all(fd: int) -> bytes:
    size = os.lseek(fd, 0, os.SEEK_END)
    return os.pread(fd, size, 0) if size else b""


def read_segment(path: Path) -> tuple[list[tuple[Any, ...]], int]:
    """The rows of a segment file and the number of bytes that could not be read.

    For inspection and tests: storing a segment does not go through Python (see
    ``ingest``). A row's cells in column order (a row priced at ingest has no money
    figures yet; its rate cells are left out). A line cut short at the end of the file
    (the writer died inside ``write``) or that does not decode is skipped and counted.
    """
    data = path.read_bytes().rstrip(b"\0")  # a mapped segment's unused tail is zeros
    width = width_of(path)
    rows: list[tuple[Any, ...]] = []
    complete, _, torn = data.rpartition(b"\n")
    bad = len(torn)
    for line in complete.split(b"\n") if complete else ():
        row = decode(line, width)
        if row is None:
            bad += len(line) + 1
        else:
            rows.append(row)
    return rows, bad


def segment_rows_estimate(path: Path) -> int:
    """How many complete records a segment holds (counts lines; no decoding)."""
    try:
        with path.open("rb") as fh:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
    except OSError:
        return 0
