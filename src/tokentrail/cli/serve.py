"""``tokentrail serve`` (the HTTP API and live dashboard) and ``tokentrail token`` (access).

Without any API token the server answers only on loopback, and refuses to bind anywhere
else; ``tokentrail token create --user ID`` (or ``--admin``) turns tokens on. Tokens are
kept in a DuckDB file: a PostgreSQL database (``--db postgresql://...``) is served on
loopback only.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..store.paths import Database
from ._common import database, db_path, echo_json

__all__ = ["serve", "token"]


def _database(ctx: click.Context, db: str | None) -> Database:
    """``--db`` of the command, else the global one: a DuckDB file or a PostgreSQL URL."""
    if db is not None:
        from ..store.paths import resolve_db

        return resolve_db(db)
    return database(ctx)


@click.command("serve")
@click.option("--db", "db", default=None, help="Database to serve (default: the global --db).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8787, show_default=True, type=int, help="Port to bind.")
@click.option(
    "--cache-ttl",
    default=1.0,
    show_default=True,
    type=float,
    help="Seconds an answer is reused for identical requests.",
)
@click.pass_context
def serve(ctx: click.Context, db: str | None, host: str, port: int, cache_ttl: float) -> None:
    """Serve the HTTP API and the live dashboard."""
    try:
        import uvicorn

        from ..server import app
        from ..server.tokens import list_tokens
        from ..server.web import is_loopback
    except ImportError:
        raise click.ClickException(
            "tokentrail serve needs FastAPI and uvicorn: pip install 'tokentrail[serve]'"
        ) from None
    path = _database(ctx, db)
    if not isinstance(path, Path) and not is_loopback(host):
        raise click.ClickException(
            f"refusing to serve {host}: API tokens are kept in a DuckDB file, so a PostgreSQL "
            "database is served without them, on loopback only (bind to 127.0.0.1 and put "
            "an authenticating proxy in front to share it)."
        )
    has_tokens = isinstance(path, Path) and bool(list_tokens(path, include_revoked=False))
    if not has_tokens and not is_loopback(host):
        raise click.ClickException(
            f"refusing to serve {host} without API tokens: anyone who can reach it would see "
            "every user's usage. Create one with `tokentrail token create --user ID` "
            "(or --admin), or bind to 127.0.0.1."
        )
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"tokentrail serving {path} on http://{shown}:{port}/")
    if has_tokens:
        click.echo("API tokens required (Authorization: Bearer <token>).")
    else:
        click.echo(
            "No API tokens exist: answering only on loopback, with access to every user. "
            "`tokentrail token create` turns tokens on."
        )
    uvicorn.run(app(path, cache_ttl=cache_ttl), host=host, port=port, log_level="warning")


@click.group("token")
def token() -> None:
    """API tokens for `tokentrail serve`: create, list, revoke."""


@token.command("create")
@click.option("--user", "user_id", default=None, help="The user this token may see.")
@click.option("--admin", is_flag=True, help="A token that sees every user.")
@click.option("--name", default=None, help="A note to recognise the token by.")
@click.option("--json", "as_json", is_flag=True, help='Print {"token": ...} as JSON.')
@click.pass_context
def create(
    ctx: click.Context, user_id: str | None, admin: bool, name: str | None, as_json: bool
) -> None:
    """Create a token for one user (--user) or an admin (--admin); printed once."""
    from ..server.tokens import create as create_token

    if admin == (user_id is not None):
        raise click.UsageError("give exactly one of --user ID or --admin")
    try:
        made = create_token(db_path(ctx), user_id=user_id, admin=admin, name=name)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if as_json:
        echo_json({"token": made.token, "id": made.id, "user_id": made.user_id, "admin": admin})
        return
    who = "admin (every user)" if admin else f"user {user_id!r}"
    click.echo(made.token)
    click.echo(f"token {made.id} for {who}; it is shown only now (stored hashed).", err=True)


@token.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """Every token: id, user, admin, created, revoked (never the secret)."""
    from ..server.tokens import list_tokens

    rows = list_tokens(db_path(ctx))
    if as_json:
        echo_json({"tokens": [r.as_dict() for r in rows]})
        return
    if not rows:
        click.echo("No API tokens: `tokentrail serve` answers only on loopback.")
        return
    click.echo(f"{'id':<14} {'user':<20} {'created (UTC)':<20} state")
    for r in rows:
        who = "(admin)" if r.admin else str(r.user_id)
        state = "revoked" if r.revoked_at is not None else "active"
        note = f"  {r.name}" if r.name else ""
        created = r.as_dict()["created_at"][:19].replace("T", " ")
        click.echo(f"{r.id:<14} {who:<20.20} {created:<20} {state}{note}")


@token.command("revoke")
@click.argument("token_id")
@click.pass_context
def revoke(ctx: click.Context, token_id: str) -> None:
    """Revoke a token by its id (see `tokentrail token list`)."""
    from ..server.tokens import revoke as revoke_token

    if not revoke_token(db_path(ctx), token_id):
        raise click.ClickException(f"no active token with id {token_id!r}")
    click.echo(f"revoked {token_id}")
