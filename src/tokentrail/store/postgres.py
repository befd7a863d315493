"""The PostgreSQL sink: batches from the spool copied into a PostgreSQL database.

The counterpart of ``batch`` for a ``postgresql://`` URL, with the same interface
(:meth:`PostgresBatches.write` and the ``retry_at``/``retry_now``/``engine`` the writer
reads). One batch connects (or reuses its connection), migrates once, then for each
segment: one transaction that checks ``tokentrail_ingested``, ``COPY``-es the segment's
rows into ``usage`` and records the segment, so a crash between the commit and deleting
the file never stores it twice. Then the file is deleted.

When the server is down or unreachable the batch fails quietly: records stay in the spool,
one warning says so (not one per call or per attempt), attempts back off from one second
to :data:`RETRY_CAP`, and once the server is back everything waiting is stored.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import StoreError
from .batch import Segment, Taken
from .framing import decode
from .notices import Notices
from .paths import PostgresUrl
from .postgres_rows import COPY_COLUMNS, copy_values
from .postgres_schema import migrate_postgres
from .recovery import cut_torn_tail
from .segments import read_segment

__all__ = ["PostgresBatches", "PostgresLink", "connect_postgres"]

logger = logging.getLogger("tokentrail")

#: Longest pause between attempts while the server is unreachable.
RETRY_CAP = 30.0
_COPY = f"COPY usage ({', '.join(COPY_COLUMNS)}) FROM STDIN"


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise StoreError(
            "a PostgreSQL database needs psycopg: pip install 'tokentrail[postgres]'"
        ) from None
    return psycopg


def connect_postgres(url: PostgresUrl, timeout: float = 10.0, **kwargs: Any) -> Any:
    """A psycopg connection to ``url`` (errors as :class:`StoreError`, password hidden)."""
    psycopg = _psycopg()
    try:
        # libpq takes whole seconds, at least 2 (smaller values are raised to 2).
        return psycopg.connect(
            url.url, connect_timeout=max(2, round(timeout)), application_name="tokentrail",
            **kwargs,
        )  # fmt: skip
    except psycopg.Error as exc:
        raise StoreError(f"cannot connect to {url}: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class PostgresLink:
    """The writer's connection, kept between batches (PostgreSQL has no file to release)."""

    def __init__(self, url: PostgresUrl) -> None:
        self.url = url
        self.con: Any = None

    def open(self, timeout: float) -> Any:
        con = self.con
        if con is None or con.closed or con.broken:
            self.drop()
            con = self.con = connect_postgres(self.url, timeout, autocommit=True)
        return con

    def drop(self) -> None:
        """Close the connection (a new one is made on next use); never raises."""
        con, self.con = self.con, None
        if con is not None:
            with contextlib.suppress(Exception):
                con.close()

    def forget_after_fork(self) -> None:
        """In a forked child: the parent's socket is left alone (closing it there would
        end the parent's session)."""
        self.con = None


class PostgresBatches:
    """Writes batches to one PostgreSQL database (from one thread at a time)."""

    def __init__(
        self,
        url: PostgresUrl,
        stored: Callable[[list[Segment], int, Sequence[Segment]], None],
        notices: Notices,
    ) -> None:
        self.url = url
        self.engine = PostgresLink(url)
        self._stored = stored
        self._notices = notices
        self._migrated = False
        self._backoff = 0.0
        self.failing = False
        #: ``time.monotonic()`` before which the background writer leaves the server alone.
        self.retry_at = 0.0
        #: Never set here (DuckDB's memory limit); read by the writer.
        self.retry_now = False

    def write(self, taken: Taken, timeout: float) -> bool:
        """Store ``taken``; True when all of it is in the database."""
        psycopg = _psycopg()
        try:
            con = self.engine.open(timeout)
            if not self._migrated:
                migrate_postgres(con, str(self.url))
                self._migrated = True
            for segment in taken.ready:
                self._store_segment(con, segment[0], mine=segment)
            self._store_memory(con, taken.memory)
            for path in (p for claim in taken.claims for p in claim.segments):
                self._recover(con, path)
        except (StoreError, psycopg.Error, OSError) as exc:
            self._failed(exc)
            return False
        self._usable_again()
        return True

    # ------------------------------------------------------------------ one segment
    def _store_segment(self, con: Any, path: Path, *, mine: Segment | None) -> int | None:
        """Copy one segment in one transaction; ``None`` when it was stored before."""
        if not path.exists():  # deleted behind our back: its records are lost
            if mine is not None:
                self._stored([mine], 0, [mine])
            return None
        rows, bad = read_segment(path)
        values = list(copy_values(rows))
        with con.transaction():
            found = con.execute(
                "SELECT 1 FROM tokentrail_ingested WHERE segment = %s", [path.name]
            ).fetchone()
            count: int | None = None
            if not found:
                count = _copy(con, values)
                con.execute(
                    "INSERT INTO tokentrail_ingested (segment, row_count) VALUES (%s, %s)",
                    [path.name, count],
                )
        skipped = len(rows) - len(values)
        if bad or skipped:
            logger.warning(
                "tokentrail: %d spooled records in %s could not be read and were skipped",
                skipped + (1 if bad else 0),
                path.name,
            )
        self._unlink(path)
        if mine is not None:
            self._stored([mine], 0, [])
        return count

    def _store_memory(self, con: Any, memory: list[bytes]) -> None:
        if not memory:
            return
        from ..records import TABLE

        decoded = [decode(line.rstrip(b"\n"), len(TABLE)) for line in memory]
        values = list(copy_values(r for r in decoded if r is not None))
        with con.transaction():
            _copy(con, values)
        self._stored([], len(memory), [])
        memory.clear()

    def _recover(self, con: Any, path: Path) -> None:
        """A segment of a process that died, cut to its last complete record."""
        if not path.exists():
            return
        if cut_torn_tail(path):
            logger.warning("tokentrail: %s ended with a record cut short; skipped", path.name)
        count = self._store_segment(con, path, mine=None)
        if count:
            logger.info(
                "tokentrail: stored %d records spooled by a process that ended before storing them",
                count,
            )

    def _unlink(self, path: Path) -> None:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            self._notices.once("unlink", f"cannot delete spool segment {path}: {exc}")

    # ------------------------------------------------------------------ failures
    def _failed(self, exc: BaseException) -> None:
        """The server is down, unreachable or refused the batch: records stay spooled."""
        self.engine.drop()
        self.failing = True
        self._backoff = min(RETRY_CAP, max(1.0, self._backoff * 2))
        self.retry_at = time.monotonic() + self._backoff
        text = str(exc) if isinstance(exc, StoreError) else _first_line(exc)
        self._notices.once(
            "db",
            f"cannot write to {self.url} ({text}); records are kept in the spool and stored "
            "once it is reachable",
        )
        logger.debug("tokentrail: PostgreSQL batch failed", exc_info=exc)

    def _usable_again(self) -> None:
        self._backoff = 0.0
        self.retry_at = 0.0
        if self.failing:
            self.failing = False
            self._notices.clear("db")
            logger.info("tokentrail: %s is reachable again; spooled records stored", self.url)


def _copy(con: Any, values: list[tuple[Any, ...]]) -> int:
    """``COPY`` the rows into ``usage`` (inside the caller's transaction)."""
    if not values:
        return 0
    with con.cursor() as cur, cur.copy(_COPY) as copy:
        for row in values:
            copy.write_row(row)
    return len(values)
