"""The append-only spool: every record reaches the kernel before ``submit()`` returns.

Each process appends to its own *segment* files in ``<db>.spool/``, copying each record
into a shared memory map of the segment (or with one ``os.write`` where blocks cannot be
allocated up front), so a record survives the process being killed (SIGKILL) the moment
``submit()`` returned. A segment holds at most ``max_rows`` records; when full, or
when the background writer wants it, it is *rotated* (closed) and becomes ready to be
copied into DuckDB, after which it is deleted.

A process holds an exclusive ``flock`` on ``<token>.lock`` for its whole life. The kernel
drops the lock when the process dies, however it dies, so another process can tell a dead
writer's segments (lock free) from a live one's (lock held) without trusting pids, and
the one that takes the lock is the only one that drains them.

Record format: one line of JSON per record (UTF-8, written by ``orjson``), an array of
plain values (str, int, float, bool, null, a list of tags) in
:data:`~tokentrail.records.COLUMNS` order, ``ts`` as RFC 3339 text with its offset (written
by orjson; segments of older versions hold microseconds since the epoch, UTC, which are
still read) and money as decimal strings. A row priced at ingest (see ``pricing.lazy``)
has no money strings: after its columns come the mark ``"r1"`` and each leaf's price per
token, and DuckDB works the money out. DuckDB reads the segments with its bulk JSON
reader (see ``ingest``), so storing a batch costs no Python per row.
"""

from __future__ import annotations

import contextlib
import json
import logging
import mmap
import os
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from math import isfinite
from operator import itemgetter
from pathlib import Path
from typing import Any, BinaryIO

import orjson

try:  # POSIX; on other systems a dead writer's segments are left for a later version.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from ..context import Attribution
from ..pricing.lazy import LazyCost, pending_of
from ..pricing.leaves import LEAVES
from ..records import COLUMNS, UsageRecord
from ..usage import Usage

__all__ = [
    "LOCK_SUFFIX",
    "SEGMENT_SUFFIX",
    "Claim",
    "SpoolWriter",
    "claim_orphans",
    "cut_torn_tail",
    "encode",
    "frame",
    "plain_row",
    "read_segment",
    "segment_rows_estimate",
]

logger = logging.getLogger("tokentrail")

SEGMENT_SUFFIX = ".jsonl"
LOCK_SUFFIX = ".lock"
# Mapped segments: bytes allocated per expected record (a usual line is 300-600 bytes;
# a segment whose lines run longer is closed when its bytes are used up). A process starts
# with small segments and doubles their size each time one fills up by bytes, so a process
# that records a few calls a second does not hold megabytes of disk it never uses.
_LINE_ESTIMATE = 640
_FIRST_SEGMENT_BYTES = 1 << 18
_MAP_SEGMENTS = hasattr(os, "posix_fallocate") and fcntl is not None
# Pages of a mapped segment are made ready for writing this many bytes at a time, ahead of
# the records (``madvise(MADV_POPULATE_WRITE)``, Linux 5.14+; 23 where Python lacks the
# name). Left to a page fault per page, the first record on each page paid 2-5 µs in the
# middle of a LangChain call; one system call per 64 KiB costs a fraction of that.
_POPULATE_BYTES = 1 << 16
_POPULATE_WRITE: int | None = getattr(
    mmap, "MADV_POPULATE_WRITE", 23 if sys.platform.startswith("linux") else None
)
# A row priced at ingest: its columns, the mark, one price per leaf (see ``pricing.lazy``).
_PRICED_WIDTH = len(COLUMNS) + 1 + len(LEAVES)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
_NONE = type(None)
_TEXT_TYPES = frozenset((str, _NONE))
_INT = frozenset((int,))
_STR = frozenset((str,))
# Metadata: values orjson does not know (Decimal, sets, objects) become their str(); keys
# that are not strings are written as text, like the json module does.
_META_OPTIONS = orjson.OPT_NON_STR_KEYS
# ``ts`` is written by orjson as RFC 3339 text (a naive time as UTC); DuckDB reads it.
_LINE_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NAIVE_UTC
# The slow, forgiving fallbacks (lone surrogates, integers beyond 64 bits, deep nesting).
_line_encoder = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def _meta_json(meta: Any) -> str | None:
    try:
        return orjson.dumps(meta, default=str, option=_META_OPTIONS).decode()
    except Exception:  # a failing str(), unsupported keys, integers beyond 64 bits
        pass
    try:
        text: str = json.dumps(meta, default=str, separators=(",", ":"))
    except Exception:  # keys that are not strings, circular references, a failing str()
        try:
            text = json.dumps(
                {str(k): v for k, v in meta.items()}, default=repr, separators=(",", ":")
            )
        except Exception:
            return None
    return text


def _text(value: Any) -> str | None:
    return value if value is None or type(value) is str else str(value)


def _timestamp(ts: Any) -> int:
    if isinstance(ts, datetime):
        if ts.tzinfo is None:  # a naive time is taken as UTC, like every ts we create
            ts = ts.replace(tzinfo=timezone.utc)
        micros: int = (ts - _EPOCH) // _MICROSECOND
        return micros
    return (datetime.now(timezone.utc) - _EPOCH) // _MICROSECOND


def encode(record: UsageRecord) -> tuple[Any, ...]:
    """The record as a tuple of plain values in ``COLUMNS`` order (the spool format).

    Same values as :meth:`UsageRecord.to_row`, except the money columns (decimal
    strings; ``ts`` stays a ``datetime`` for orjson, or microseconds since the epoch when it
    is not one). A cost not worked out yet (a :class:`~tokentrail.pricing.lazy.LazyCost`)
    leaves the money cells empty and adds its rate cells after the columns: DuckDB works
    the money out when it stores the row. Written for speed: it runs on the
    caller's thread for every call, so the usual case (text fields that are ``str`` or
    ``None``, counts that are ``int``) is checked in bulk instead of value by value.
    """
    u = record.usage
    meta = record.metadata
    if record.cache_hit or record.price_variant or u.issues:
        meta = dict(meta) if meta else {}
        if record.cache_hit:
            meta["cache_hit"] = True
        if record.price_variant:
            meta.setdefault("price_variant", record.price_variant)
        if u.issues:
            meta["usage_issues"] = list(u.issues)
    latency = record.latency_ms
    if latency is not None:
        latency = float(latency)
        if not isfinite(latency):
            latency = None
    n_in = u.input_tokens
    n_out = u.output_tokens
    c = record.cost
    rates = None
    if c is None:
        priced_model = currency = source = catalog = None
        m_in = m_read = m_write = m_out = m_reason = m_audio = m_total = None
    elif type(c) is LazyCost and (pending := pending_of(c)) is not None:
        # Not worked out yet: DuckDB multiplies the leaves out when it stores the row.
        currency, priced_model, _, _, _, catalog, source = pending.static[:7]
        rates = pending.cells
        m_in = m_read = m_write = m_out = m_reason = m_audio = m_total = None
    else:
        # Range and NaN are checked by DuckDB (TRY_CAST to DECIMAL(18, 12): NULL when it
        # does not fit), so one bad figure never fails a batch. Most leaves are zero.
        priced_model, currency, source, catalog = c.model, c.currency, c.source, c.catalog_version
        m_in = None if (m := c.input_cost) is None else "0" if not m else str(m)
        m_read = None if (m := c.cache_read_cost) is None else "0" if not m else str(m)
        m_write = None if (m := c.cache_write_cost) is None else "0" if not m else str(m)
        m_out = None if (m := c.output_cost) is None else "0" if not m else str(m)
        m_reason = None if (m := c.reasoning_cost) is None else "0" if not m else str(m)
        m_audio = None if (m := c.audio_cost) is None else "0" if not m else str(m)
        m_total = None if (m := c.total) is None else "0" if not m else str(m)
    rid = record.id
    row: tuple[Any, ...] = (
        rid if type(rid) is str else str(rid),
        ts if type(ts := record.ts) is datetime else _timestamp(ts),
        latency,
        record.framework,
        record.provider,
        record.model,
        priced_model,
        record.user_id,
        record.session_id,
        record.operation,
        record.run_id,
        record.parent_run_id,
        record.trace_id,
        _tag_list(record.tags),
        _meta_json(meta) if meta else None,
        n_in,
        n_out,
        n_in + n_out if type(n_in) is int and type(n_out) is int else None,
        u.cache_read_tokens,
        u.cache_write_tokens,
        u.cache_write_1h_tokens,
        u.reasoning_tokens,
        u.input_audio_tokens,
        u.output_audio_tokens,
        m_in,
        m_read,
        m_write,
        m_out,
        m_reason,
        m_audio,
        m_total,
        currency,
        source,
        catalog,
        bool(u.estimated),
        bool(record.streamed),
        record.status or "ok",
        record.error_type,
        record.request_id,
    )
    row = _checked(row)
    if rates is not None:
        row += rates
    return row


def plain_row(
    record_id: str,
    ts: datetime | int,
    latency_ms: float,
    framework: str,
    provider: str | None,
    model: str,
    attribution: Attribution,
    run_id: str | None,
    parent_run_id: str | None,
    trace_id: str | None,
    metadata: Mapping[str, Any],
    usage: Usage,
    rates: tuple[tuple[Any, ...], tuple[str | None, ...]],
    streamed: bool,
    request_id: str | None,
) -> tuple[Any, ...]:
    """:func:`encode` of the usual call, from its parts, without a record to read back.

    The call: status ``ok``, no cache hit, no price variant, a ``usage`` without issues, a
    finite latency, the attribution already merged, and priced at ingest with ``rates``
    (:meth:`~tokentrail.pricing.engine.Pricer.lazy_rates`). The row is the one ``encode``
    writes for that record (``tests/test_store_plain.py`` checks it case by case), except
    that a ``ts`` given as microseconds since the epoch (UTC) is written as that number,
    which DuckDB stores as the same time.
    """
    u = usage
    n_in = u.input_tokens
    n_out = u.output_tokens
    static, cells = rates
    row: tuple[Any, ...] = (
        record_id,
        ts,
        latency_ms,
        framework,
        provider,
        model,
        static[1],
        attribution.user_id,
        attribution.session_id,
        attribution.operation,
        run_id,
        parent_run_id,
        trace_id,
        _tag_list(attribution.tags),
        _meta_json(metadata) if metadata else None,
        n_in,
        n_out,
        n_in + n_out if type(n_in) is int and type(n_out) is int else None,
        u.cache_read_tokens,
        u.cache_write_tokens,
        u.cache_write_1h_tokens,
        u.reasoning_tokens,
        u.input_audio_tokens,
        u.output_audio_tokens,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        static[0],
        static[6],
        static[5],
        bool(u.estimated),
        streamed,
        "ok",
        None,
        request_id,
    )
    return _checked(row) + cells


def _tag_list(tags: Sequence[Any]) -> list[str]:
    """The tags cell: a list of text."""
    if not tags:
        return []
    return [*tags] if _STR.issuperset(map(type, tags)) else [str(t) for t in tags]


def _checked(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """``row`` with its text cells text (or NULL) and its counts ints; the usual row (all
    of them already are) is checked in bulk and returned as it is."""
    if _TEXT_TYPES.issuperset(map(type, _text_cells(row))) and _INT.issuperset(
        map(type, _count_cells(row))
    ):
        return row
    return _repaired(row)


def _repaired(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A row whose text cells are text (or NULL) and whose counts are ints."""
    cells = list(row)
    for i in _TEXT_POSITIONS:
        cells[i] = _text(cells[i])
    for i in _COUNT_POSITIONS:
        cells[i] = int(cells[i])
    cells[_TOTAL] = cells[_TOTAL - 2] + cells[_TOTAL - 1]
    return tuple(cells)


# Positions of the text columns in a spool row (checked in bulk, converted if needed).
_TEXT_POSITIONS = tuple(
    i
    for i, name in enumerate(COLUMNS)
    if name
    in (
        "priced_model",
        "currency",
        "cost_source",
        "catalog_version",
        "framework",
        "provider",
        "model",
        "user_id",
        "session_id",
        "operation",
        "run_id",
        "parent_run_id",
        "trace_id",
        "status",
        "error_type",
        "request_id",
    )
)
_text_cells = itemgetter(*_TEXT_POSITIONS)
_TOTAL = COLUMNS.index("total_tokens")
_COUNT_POSITIONS = tuple(
    i for i, name in enumerate(COLUMNS) if name.endswith("_tokens") and name != "total_tokens"
)
_count_cells = itemgetter(*_COUNT_POSITIONS)


def _clean(value: Any) -> Any:
    if isinstance(value, datetime):
        return _timestamp(value)
    if type(value) is str:
        return value.encode("utf-8", "replace").decode("utf-8")
    if type(value) is list:
        return [_clean(v) for v in value]
    return value


def frame(row: tuple[Any, ...]) -> bytes:
    """One spool record: the row as a line of JSON (UTF-8, ending with a newline)."""
    try:
        return orjson.dumps(row, option=_LINE_OPTIONS)
    except orjson.JSONEncodeError:
        pass
    # A lone surrogate (invalid UTF-16 from a bad decode) is replaced, real non-BMP
    # characters pass through; the json module copes with what orjson refuses.
    text: str = _line_encoder.encode(tuple(_clean(v) for v in row))
    return (text + "\n").encode("ascii")


def read_segment(path: Path) -> tuple[list[tuple[Any, ...]], int]:
    """The rows of a segment file and the number of bytes that could not be read.

    For inspection and tests: storing a segment does not go through Python (see
    ``ingest``). A row's cells in ``COLUMNS`` order (a row priced at ingest has no money
    figures yet; its rate cells are left out). A line cut short at the end of the file
    (the writer died inside ``write``) or that does not decode is skipped and counted.
    """
    data = path.read_bytes().rstrip(b"\0")  # a mapped segment's unused tail is zeros
    rows: list[tuple[Any, ...]] = []
    width = len(COLUMNS)
    bad = 0
    complete, _, torn = data.rpartition(b"\n")
    bad += len(torn)
    for line in complete.split(b"\n") if complete else ():
        try:
            value = json.loads(line)
        except ValueError:
            bad += len(line) + 1
            continue
        if type(value) is not list or len(value) not in (width, _PRICED_WIDTH):
            bad += len(line) + 1
            continue
        rows.append(tuple(value[:width]))
    return rows, bad


def segment_rows_estimate(path: Path) -> int:
    """How many complete records a segment holds (counts lines; no decoding)."""
    try:
        with path.open("rb") as fh:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
    except OSError:
        return 0


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


_BLOCK = 1 << 16


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


def _lock(fd: int, blocking: bool) -> bool:
    if fcntl is None:  # pragma: no cover - Windows
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except OSError:
        return False
    return True


def _open_locked(path: Path) -> int:
    """Create ``path``, lock it, and return the descriptor of the file still at ``path``.

    Another process's orphan scan may remove the lock file between our ``open`` and
    ``flock`` (it looks like one a writer left behind); a lock on a removed file protects
    nothing, so the file is opened and locked again until the two match.
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        _lock(fd, blocking=True)
        try:
            held, named = os.fstat(fd), os.stat(path)
        except FileNotFoundError:
            os.close(fd)
            continue
        if (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino):
            return fd
        os.close(fd)


class SpoolWriter:
    """This process's segments in one spool directory.

    ``append`` writes one record; ``rotate`` closes the segment being written and returns
    its path for the writer to ingest. Not thread-safe: the store serializes calls.

    A segment is written through a shared memory map of a file whose blocks were
    allocated up front (``posix_fallocate``): a record costs a copy into the page cache,
    no system call, and the kernel keeps what was copied when the process is killed
    however it dies. A record's closing newline is stored after the rest of it, so a line
    that ends in a newline is complete. ``rotate`` truncates the file to what was written;
    a killed writer's segment keeps a tail of zero bytes, which :func:`cut_torn_tail`
    removes with any record cut short. Where blocks cannot be allocated (no
    ``posix_fallocate``, a full disk), segments are written with one ``os.write`` per
    record instead: a store into a map whose blocks are missing would end the process.
    """

    def __init__(self, directory: Path, max_rows: int) -> None:
        self.directory = directory
        self.max_rows = max_rows
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.token = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._lock_path = directory / f"{self.token}{LOCK_SUFFIX}"
        self._lock_fd = _open_locked(self._lock_path)
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

    def _open(self, need: int = 0) -> int:
        self._seq += 1
        path = self.directory / f"{self.token}-{self._seq:08d}{SEGMENT_SUFFIX}"
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(path, flags, 0o600)
        self._fd = fd
        self._path = path
        self.rows = 0
        self._pos = 0
        if self._mapping:
            self._map_segment(fd, need)
        return fd

    def _map_segment(self, fd: int, need: int) -> None:
        size = max(self._segment_bytes, need + 1)
        size = -(-size // mmap.PAGESIZE) * mmap.PAGESIZE
        try:
            os.posix_fallocate(fd, 0, size)
            self._map = mmap.mmap(fd, size, flags=mmap.MAP_SHARED)
        except (OSError, ValueError) as exc:
            # Unsupported here or the disk is full: write records with os.write instead.
            logger.debug("tokentrail: spool segments not mapped (%s)", exc)
            self._mapping = False
            self._map = None
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            return
        self._capacity = size
        self._populated = 0

    def fast_append(self, data: bytes) -> bool:
        """Write one framed record when that is all there is to do; True when written.

        False (nothing written) when no segment is open, the segment would fill up, or the
        write came up short: then :meth:`append` does it, handling each case.
        """
        if self.rows + 1 >= self.max_rows:
            return False
        buffer = self._map
        if buffer is not None:
            start = self._pos
            end = start + len(data)
            if end > self._capacity:
                return False
            if end > self._populated:
                self._populate(end)
            last = end - 1
            buffer[start:last] = data[:-1]
            buffer[last] = 10  # the newline last: a line that has one is complete
            self._pos = end
            self.rows += 1
            return True
        fd = self._fd
        if fd is None:
            return False
        try:
            written = os.write(fd, data)
        except OSError:
            return False
        if written != len(data):
            # Short write (disk full): cut the partial record off, as ``append`` does.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, os.lseek(fd, 0, os.SEEK_END) - written)
            return False
        self.rows += 1
        return True

    def append(self, data: bytes) -> None:
        """Write one framed record; a segment this closes (full) is added to ``closed``."""
        if self._map is not None and self._pos + len(data) > self._capacity:
            # The record does not fit: it starts the next segment, a larger one.
            self._segment_bytes = min(2 * self._segment_bytes, self.max_rows * _LINE_ESTIMATE)
            self._close_full()
        if self._fd is None:
            self._open(len(data))
        if self._map is not None:
            self._store_mapped(data)
        else:
            self._write_unmapped(data)
        if self.rows >= self.max_rows:
            self._close_full()

    def take_closed(self) -> list[tuple[Path, int]]:
        """The segments ``append`` closed since the last call, with their record counts."""
        closed, self.closed = self.closed, []
        return closed

    def _store_mapped(self, data: bytes) -> None:
        assert self._map is not None
        start = self._pos
        end = start + len(data)
        if end > self._populated:
            self._populate(end)
        self._map[start : end - 1] = data[:-1]
        self._map[end - 1] = 10
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
            # An older kernel: pages fault in one by one as records reach them, as before.
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
        try:
            if buffer is not None:
                buffer.close()
                os.ftruncate(fd, used)  # the unwritten, allocated tail goes
        finally:
            os.close(fd)
        if rows == 0 and path is not None:
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        return path

    def close(self) -> None:
        """Release the lock; the lock file is removed when no segment is left."""
        self.rotate()
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
        for fd in (self._fd, self._lock_fd):
            if fd is not None and fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._map = None
        self._fd = None
        self._lock_fd = -1


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


def _token_of(name: str) -> str:
    stem = name[: -len(SEGMENT_SUFFIX)]
    return stem.rsplit("-", 1)[0]


def claim_orphans(directory: Path, own_tokens: set[str]) -> Iterator[Claim]:
    """Lock and yield the segments of every writer in ``directory`` that is gone.

    A writer is gone when its lock file can be locked (the kernel released the lock at
    its death) or was already removed. Segments whose owner is alive are left alone.
    """
    try:
        names = os.listdir(directory)
    except OSError:
        return
    by_token: dict[str, list[Path]] = {}
    for name in names:
        if name.endswith(SEGMENT_SUFFIX):
            by_token.setdefault(_token_of(name), []).append(directory / name)
    for token in sorted(by_token):
        if token in own_tokens or fcntl is None:
            continue
        lock_path = directory / f"{token}{LOCK_SUFFIX}"
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        except OSError:
            continue
        if not _lock(fd, blocking=False):
            os.close(fd)
            continue
        segments = sorted(p for p in by_token[token] if p.exists())
        yield Claim(token, lock_path, fd, segments)
    # Lock files left without segments (a writer that exited cleanly before removing it).
    for name in names:
        if name.endswith(LOCK_SUFFIX) and name[: -len(LOCK_SUFFIX)] not in by_token:
            token = name[: -len(LOCK_SUFFIX)]
            if token in own_tokens or fcntl is None:
                continue
            path = directory / name
            with contextlib.suppress(OSError):
                fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
                if _lock(fd, blocking=False):
                    path.unlink()
                os.close(fd)
