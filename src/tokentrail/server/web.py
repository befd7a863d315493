"""The ASGI application: JSON endpoints under ``/api``, the live dashboard at ``/``.

Access: when the database holds API tokens, every ``/api`` endpoint but ``/api/health``
needs ``Authorization: Bearer <token>``; a user token is scoped to its user on every
endpoint whatever ``userId`` it passes, an admin token sees everything. When no token
exists, requests are answered only from loopback addresses, as an admin.
"""

import ipaddress
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from . import schemas
from .service import Answer, UsageService
from .service import Query as Scope
from .tokens import Principal, match

if TYPE_CHECKING:
    from ..store.paths import PostgresUrl
    from ..tracker import Tracker

__all__ = ["STALE_HEADER", "create_app", "is_loopback"]

#: Set on an answer computed before the latest change to the data (a newer one is coming).
STALE_HEADER = "X-Tokentrail-Stale"

STATIC = Path(__file__).with_name("static")
LOOK = Path(__file__).parent.parent / "assets" / "look.css"  # shared with tokentrail html

# The dashboard loads nothing from elsewhere; the policy makes the browser hold it to that.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)

_SINCE = Query(None, description='Start, inclusive: "7d", "24h", "this-month", ISO date or time.')
_UNTIL = Query(None, description="End, exclusive; same forms as since.")
_USER = Query(
    None,
    alias="userId",
    description="Only this user (admin tokens); a user token always sees only its own user.",
)
_MODEL = Query(None, description="Only this model.")
_OPERATION = Query(None, description="Only this operation.")


def is_loopback(host: str | None) -> bool:
    """True for ``localhost`` and loopback IP addresses (v4 and v6)."""
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


async def _value(answer: Answer) -> tuple[Any, bool]:
    """``(value, stale)``: from the event loop when at hand, else computed in a thread."""
    ready, value, stale = answer.ready()
    if not ready:
        value, stale = await run_in_threadpool(answer.get)
    return value, stale


async def _answer(answer: Answer) -> Response:
    # Answers are cached already serialized; response_model still documents their shape.
    # A stale answer (the data changed; its successor is being computed) says so, and the
    # dashboard asks again shortly.
    body, stale = await _value(answer)
    headers = {STALE_HEADER: "1"} if stale else None
    return Response(body, media_type="application/json", headers=headers)


def create_app(  # noqa: C901 - the routes it defines inside count toward it
    source: "Tracker | str | os.PathLike[str] | PostgresUrl | None" = None,
    *,
    cache_ttl: float = 1.0,
    title: str = "tokentrail",
) -> FastAPI:
    """The FastAPI app over a tracker's database, a DuckDB path or a PostgreSQL URL
    (``None``: the default database)."""
    from .. import __version__

    service = UsageService(source, cache_ttl=cache_ttl)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        service.close()

    api = FastAPI(
        lifespan=lifespan,
        # FastAPI's /docs and /redoc pages load their scripts from a CDN; the schema at
        # /openapi.json is served, and nothing here is fetched from elsewhere.
        docs_url=None,
        redoc_url=None,
        title=f"{title} API",
        version=__version__,
        description=(
            "Token usage and cost of LLM calls recorded by tokentrail. Money is a decimal "
            "string in USD at full precision; times are ISO 8601 UTC. Authenticate with "
            "`Authorization: Bearer <token>` (`tokentrail token create`)."
        ),
    )
    api.state.service = service

    async def principal(
        request: Request,
        authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    ) -> Principal:
        active, _ = await _value(service.principals())
        if not active:
            host = request.client.host if request.client is not None else None
            if not is_loopback(host):
                raise HTTPException(
                    403,
                    "no API token exists, so this server answers only on loopback; "
                    "create one with `tokentrail token create --user ID` (or --admin)",
                )
            return Principal(admin=True)
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
        found = match(token.strip(), active)
        if found is None:
            raise HTTPException(
                401, "invalid or revoked token", headers={"WWW-Authenticate": "Bearer"}
            )
        return found

    Caller = Annotated[Principal, Depends(principal)]

    def scope(
        who: Principal,
        since: str | None = None,
        until: str | None = None,
        user_id: str | None = None,
        model: str | None = None,
        operation: str | None = None,
    ) -> Scope:
        return Scope(
            since=since,
            until=until,
            user_id=user_id if who.admin else who.user_id,
            model=model,
            operation=operation,
        )

    @api.exception_handler(ValueError)
    async def bad_value(_request: Request, exc: ValueError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @api.get("/api/health", response_model=schemas.Health, tags=["meta"])
    async def health() -> schemas.Health:
        """Up and able to read the database; says whether tokens are required."""
        active, _ = await _value(service.principals())
        return schemas.Health(
            status="ok", version=__version__, auth="tokens" if active else "loopback-only"
        )

    @api.get("/api/me", response_model=schemas.Me, tags=["meta"])
    async def me(who: Caller) -> schemas.Me:
        """The user the token belongs to, and whether it is an admin token."""
        return schemas.Me(user_id=who.user_id, admin=who.admin)

    @api.get("/api/tokens/stats", response_model=schemas.Stats, tags=["usage"])
    async def stats(
        who: Caller,
        since: str | None = _SINCE,
        until: str | None = _UNTIL,
        user_id: str | None = _USER,
        model: str | None = _MODEL,
        operation: str | None = _OPERATION,
    ) -> Response:
        """Total tokens and cost, calls, and the split by operation, model and user."""
        return await _answer(service.stats(scope(who, since, until, user_id, model, operation)))

    @api.get("/api/tokens/history", response_model=schemas.History, tags=["usage"])
    async def history(
        who: Caller,
        limit: int = Query(50, ge=1, le=1000),
        before: str | None = Query(None, description="A call id: the calls after it."),
        since: str | None = _SINCE,
        until: str | None = _UNTIL,
        user_id: str | None = _USER,
        model: str | None = _MODEL,
        operation: str | None = _OPERATION,
    ) -> Response:
        """Recent calls, newest first; page with ``before=<nextBefore>``."""
        q = scope(who, since, until, user_id, model, operation)
        return await _answer(service.history(q, limit, before))

    @api.get("/api/tokens/usage-by-period", response_model=schemas.Period, tags=["usage"])
    async def usage_by_period(
        who: Caller,
        period: str = Query("day", pattern="^(day|week|month)$"),
        since: str | None = _SINCE,
        until: str | None = _UNTIL,
        user_id: str | None = _USER,
        model: str | None = _MODEL,
        operation: str | None = _OPERATION,
    ) -> Response:
        """Tokens and cost per UTC day, week (Monday) or month; empty periods are zeros."""
        q = scope(who, since, until, user_id, model, operation)
        return await _answer(service.by_period(q, period))

    @api.get("/api/tokens/projection", response_model=schemas.Projection, tags=["usage"])
    async def projection(
        who: Caller,
        user_id: str | None = _USER,
        model: str | None = _MODEL,
        operation: str | None = _OPERATION,
    ) -> Response:
        """Month-end spend: month to date + the last 7 days' daily run rate × days left."""
        return await _answer(service.projection(scope(who, None, None, user_id, model, operation)))

    @api.get("/api/budgets", response_model=schemas.BudgetList, tags=["budgets"])
    async def budgets(who: Caller, user_id: str | None = _USER) -> Response:
        """Every budget window that applies to the caller, with its spend from the store.

        A user token sees its own ``user`` budgets; an admin sees all (or one user's).
        """
        return await _answer(service.budgets(user_id if who.admin else who.user_id))

    @api.post("/api/budgets/check", response_model=schemas.BudgetCheck, tags=["budgets"])
    def check(who: Caller, body: schemas.BudgetCheckRequest) -> schemas.BudgetCheck:
        """May this user make this request? ``tracker.check``: reserves nothing."""
        if not who.admin:
            body = body.model_copy(update={"user_id": who.user_id})
        return service.check(body, admin=who.admin)

    @api.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @api.get("/static/look.css", include_in_schema=False)
    def look() -> FileResponse:
        return FileResponse(LOOK, media_type="text/css")

    api.mount("/static", StaticFiles(directory=STATIC), name="static")
    api.add_middleware(_Headers)
    return api


class _Headers:
    """Security headers on every response, and no caching of API answers by browsers.

    A plain ASGI middleware: Starlette's ``BaseHTTPMiddleware`` costs more per request
    than a cached answer does.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = [
            (b"content-security-policy", _CSP.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
        ]
        path: str = scope["path"]
        root = scope.get("root_path") or ""
        if path.removeprefix(root).startswith("/api/"):  # also when mounted under a prefix
            extra.append((b"cache-control", b"no-store"))

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
