"""API tokens for ``tokentrail serve``: created by the CLI, stored hashed, checked per request.

A token is ``tt_`` + :func:`secrets.token_urlsafe`; only its SHA-256 is stored, in the
``api_tokens`` table of the same database as the ``usage`` table. A user token is bound to
one ``user_id`` and sees only that user's rows; an admin token sees everything.

Example::

    from tokentrail.server import tokens
    made = tokens.create("usage.duckdb", user_id="u1")   # made.token is shown once
    tokens.revoke("usage.duckdb", made.id)
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..store.integrity import SAFE_CONFIG

__all__ = [
    "TABLE",
    "NewToken",
    "Principal",
    "TokenInfo",
    "create",
    "hash_token",
    "list_tokens",
    "load_active",
    "match",
    "revoke",
]

#: The table holding token hashes (created on first use).
TABLE = "api_tokens"

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id VARCHAR PRIMARY KEY,
    token_sha256 VARCHAR NOT NULL,
    user_id VARCHAR,
    admin BOOLEAN NOT NULL,
    name VARCHAR,
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
)"""

_PREFIX = "tt_"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: an admin (every row) or one user (only rows with that ``user_id``).

    ``token_id`` is ``None`` when the server runs without tokens (loopback only, admin).
    """

    admin: bool
    user_id: str | None = None
    token_id: str | None = None


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """One stored token, without its secret."""

    id: str
    user_id: str | None
    admin: bool
    name: str | None
    created_at: datetime
    revoked_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly mapping."""
        return {
            "id": self.id,
            "user_id": self.user_id,
            "admin": self.admin,
            "name": self.name,
            "created_at": self.created_at.astimezone(timezone.utc).isoformat(),
            "revoked_at": (
                None
                if self.revoked_at is None
                else self.revoked_at.astimezone(timezone.utc).isoformat()
            ),
        }


@dataclass(frozen=True, slots=True)
class NewToken:
    """A token just created: ``token`` is the bearer secret, shown once and never stored."""

    id: str
    token: str
    user_id: str | None
    admin: bool


def hash_token(token: str) -> str:
    """The stored form of a token: hex SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@contextmanager
def _writable(path: str | os.PathLike[str], timeout: float = 30.0) -> Iterator[Any]:
    """A read-write connection, retrying while another process holds the file."""
    import duckdb

    db = Path(path)
    db.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    while True:
        try:
            con = duckdb.connect(str(db), config=SAFE_CONFIG)
            break
        except duckdb.IOException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    try:
        con.execute(_SCHEMA)
        yield con
    finally:
        con.close()


def create(
    path: str | os.PathLike[str],
    *,
    user_id: str | None = None,
    admin: bool = False,
    name: str | None = None,
) -> NewToken:
    """Create a token for ``user_id`` (or an admin token) and store its hash."""
    if admin == (user_id is not None):
        raise ValueError("a token is either for one user (user_id=...) or admin=True")
    if user_id is not None and not user_id.strip():
        raise ValueError("user_id must not be empty")
    token = _PREFIX + secrets.token_urlsafe(32)
    ident = secrets.token_hex(6)
    with _writable(path) as con:
        con.execute(
            f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?, NULL)",
            [ident, hash_token(token), user_id, admin, name, datetime.now(timezone.utc)],
        )
    return NewToken(id=ident, token=token, user_id=user_id, admin=admin)


def list_tokens(path: str | os.PathLike[str], *, include_revoked: bool = True) -> list[TokenInfo]:
    """Every token (newest first), without secrets."""
    from ..analytics.connection import connect

    if not Path(path).exists():
        return []
    with connect(path) as con:
        if not _has_table(con):
            return []
        rows = con.execute(
            f"SELECT id, user_id, admin, name, created_at, revoked_at FROM {TABLE}"
            + ("" if include_revoked else " WHERE revoked_at IS NULL")
            + " ORDER BY created_at DESC, id"
        ).fetchall()
    return [TokenInfo(*row) for row in rows]


def revoke(path: str | os.PathLike[str], token_id: str) -> bool:
    """Revoke the token with this id; False when there is no such active token."""
    if not Path(path).exists():
        return False
    with _writable(path) as con:
        found = con.execute(
            f"UPDATE {TABLE} SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL RETURNING id",
            [datetime.now(timezone.utc), token_id],
        ).fetchall()
    return bool(found)


def _has_table(con: Any) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [TABLE]
        ).fetchone()[0]
    )


def load_active(con: Any) -> list[tuple[str, Principal]]:
    """``(sha256, principal)`` of every active token, read through an open connection."""
    if not _has_table(con):
        return []
    rows = con.execute(
        f"SELECT token_sha256, id, user_id, admin FROM {TABLE} WHERE revoked_at IS NULL"
    ).fetchall()
    return [
        (digest, Principal(admin=bool(admin), user_id=user, token_id=ident))
        for digest, ident, user, admin in rows
    ]


def match(token: str, active: Sequence[tuple[str, Principal]]) -> Principal | None:
    """The principal of ``token`` among ``active`` hashes, compared in constant time."""
    digest = hash_token(token)
    found: Principal | None = None
    for stored, principal in active:
        # Every stored hash is compared, so the time taken does not say which one matched.
        if hmac.compare_digest(stored, digest):
            found = principal
    return found
