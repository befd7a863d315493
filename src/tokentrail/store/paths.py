"""Where the database and its spool live: a DuckDB file, or a PostgreSQL URL."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "ENV_VAR",
    "Database",
    "PostgresUrl",
    "fallback_spool_dir",
    "is_postgres_url",
    "primary_spool_dir",
    "resolve_db",
    "resolve_db_path",
    "spool_dirs",
    "temp_spool_dir",
]

#: Environment variable that overrides the default database path.
ENV_VAR = "TOKENTRAIL_DB"


def resolve_db_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The database file to use: ``path`` > ``$TOKENTRAIL_DB`` > the user data directory.

    The default is ``platformdirs.user_data_path("tokentrail") / "usage.duckdb"``. Nothing
    is created here: directories are made when the first record is written. A PostgreSQL
    URL (given, or in ``TOKENTRAIL_DB``) is not a file: :class:`StoreError` says to use
    :func:`resolve_db`, which takes either.

    Example::

        >>> resolve_db_path("usage.duckdb").name
        'usage.duckdb'
    """
    if path is None or str(path) == "":
        env = os.environ.get(ENV_VAR)
        if env:
            path = env
    if isinstance(path, PostgresUrl) or is_postgres_url(path):
        from ..errors import StoreError

        raise StoreError(
            f"{PostgresUrl(str(getattr(path, 'url', path)))} is a PostgreSQL database, not a "
            "DuckDB file: this needs a file path (resolve_db takes either)"
        )
    if isinstance(path, str) and _OTHER_URL.match(path):
        from ..errors import StoreError

        raise StoreError(
            f"{path.split('://', 1)[0]}:// databases are not supported: give a DuckDB file "
            "path or a postgresql:// URL"
        )
    if path is None or str(path) == "":
        import platformdirs

        return Path(platformdirs.user_data_path("tokentrail")) / "usage.duckdb"
    return Path(os.path.abspath(os.path.expanduser(os.fspath(path))))


_URL_SCHEMES = ("postgresql://", "postgres://")
# Any other URL (mysql://, sqlite:///x.db): read as a relative path it would make a folder
# named "mysql:" and store there.
_OTHER_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def is_postgres_url(target: object) -> bool:
    """True for ``postgresql://...`` and ``postgres://...`` (a PostgreSQL database)."""
    return isinstance(target, str) and target.lower().startswith(_URL_SCHEMES)


@dataclass(frozen=True)
class PostgresUrl:
    """A PostgreSQL database named by its libpq URL.

    ``str()`` and ``repr()`` never show the password (it appears in messages and logs);
    :attr:`url` is the full URL to connect with.
    """

    url: str

    @property
    def redacted(self) -> str:
        """The URL without its password."""
        parts = urlsplit(self.url)
        if parts.password is None:
            return self.url
        netloc = parts.netloc.rsplit("@", 1)
        user = netloc[0].split(":", 1)[0]
        return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))

    @property
    def key(self) -> str:
        """The URL without any password: what the spool folder is keyed by."""
        parts = urlsplit(self.url)
        if parts.password is None:
            return self.url
        user, host = parts.netloc.rsplit("@", 1)
        return urlunsplit(parts._replace(netloc=f"{user.split(':', 1)[0]}@{host}"))

    @property
    def name(self) -> str:
        """The database name (after the host), for messages."""
        return urlsplit(self.url).path.lstrip("/") or "postgres"

    def exists(self) -> bool:
        """A URL always names a database that may hold rows (never 'a missing file')."""
        return True

    def __str__(self) -> str:
        return self.redacted

    def __repr__(self) -> str:
        return f"PostgresUrl({self.redacted!r})"


#: Where usage is stored: a DuckDB file or a PostgreSQL database.
Database = Path | PostgresUrl


def resolve_db(target: str | os.PathLike[str] | PostgresUrl | None = None) -> Database:
    """The database to use: a :class:`PostgresUrl` for a ``postgresql://`` URL (given or in
    ``TOKENTRAIL_DB``), else the DuckDB file of :func:`resolve_db_path`."""
    if isinstance(target, PostgresUrl):
        return target
    if target is None or str(target) == "":
        target = os.environ.get(ENV_VAR) or None
    if is_postgres_url(target):
        return PostgresUrl(str(target))
    return resolve_db_path(target)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def primary_spool_dir(db: Database) -> Path:
    """The spool next to the database: ``<db>.spool/``; for a PostgreSQL URL, a folder
    under the user state directory keyed by the URL without its password."""
    if isinstance(db, PostgresUrl):
        import platformdirs

        return Path(platformdirs.user_state_path("tokentrail")) / "spool" / f"pg-{_digest(db.key)}"
    return db.with_name(db.name + ".spool")


def fallback_spool_dir(db: Database) -> Path:
    """Where the spool goes when the database directory is not writable.

    A per-database folder under the user state directory, so the next process that opens
    the same database finds it (for a PostgreSQL URL: under the temporary directory).
    """
    if isinstance(db, PostgresUrl):
        return Path(tempfile.gettempdir()) / "tokentrail-spool" / f"pg-{_digest(db.key)}"
    import platformdirs

    return Path(platformdirs.user_state_path("tokentrail")) / "spool" / _digest(str(db))


def temp_spool_dir(db: Database) -> Path:
    """The last place the spool goes (the database's and the state directory's disks full
    or read-only): this user's private folder in the system temporary directory."""
    if isinstance(db, PostgresUrl):
        return fallback_spool_dir(db)
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"tokentrail-{uid}" / "spool" / _digest(str(db))


def spool_dirs(db: Database) -> tuple[Path, ...]:
    """Every place a spool for ``db`` may be, in the order the writer tries them."""
    found = (primary_spool_dir(db), fallback_spool_dir(db), temp_spool_dir(db))
    return tuple(dict.fromkeys(found))
