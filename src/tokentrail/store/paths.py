"""Where the database and its spool live."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["ENV_VAR", "fallback_spool_dir", "primary_spool_dir", "resolve_db_path", "spool_dirs"]

#: Environment variable that overrides the default database path.
ENV_VAR = "TOKENTRAIL_DB"


def resolve_db_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The database file to use: ``path`` > ``$TOKENTRAIL_DB`` > the user data directory.

    The default is ``platformdirs.user_data_path("tokentrail") / "usage.duckdb"``. Nothing
    is created here: directories are made when the first record is written.

    Example::

        >>> resolve_db_path("usage.duckdb").name
        'usage.duckdb'
    """
    if path is None or str(path) == "":
        env = os.environ.get(ENV_VAR)
        if env:
            path = env
    if path is None or str(path) == "":
        import platformdirs

        return Path(platformdirs.user_data_path("tokentrail")) / "usage.duckdb"
    return Path(os.path.abspath(os.path.expanduser(os.fspath(path))))


def primary_spool_dir(db: Path) -> Path:
    """The spool next to the database: ``<db>.spool/``."""
    return db.with_name(db.name + ".spool")


def fallback_spool_dir(db: Path) -> Path:
    """Where the spool goes when the database directory is not writable.

    A per-database folder under the user state directory, so the next process that opens
    the same database finds it.
    """
    import platformdirs

    digest = hashlib.sha256(str(db).encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return Path(platformdirs.user_state_path("tokentrail")) / "spool" / digest


def spool_dirs(db: Path) -> tuple[Path, Path]:
    """Every place a spool for ``db`` may be: the primary one first."""
    return primary_spool_dir(db), fallback_spool_dir(db)
