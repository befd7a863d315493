"""``tokentrail serve``: the HTTP API and the live dashboard (``pip install 'tokentrail[serve]'``).

Run it from the command line::

    tokentrail token create --user u1        # prints a bearer token for user u1
    tokentrail serve --port 8787             # http://127.0.0.1:8787/

or mount it in your own FastAPI/Starlette app, over a tracker or a database path::

    from fastapi import FastAPI
    import tokentrail.server

    web = FastAPI()
    web.mount("/usage", tokentrail.server.app(tracker))

Endpoints (JSON, camelCase, documented at ``/openapi.json``): ``/api/tokens/stats``,
``/api/tokens/history``, ``/api/tokens/usage-by-period``, ``/api/tokens/projection``,
``/api/budgets``, ``POST /api/budgets/check``, ``/api/me``, ``/api/health``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..store.paths import PostgresUrl
    from ..tracker import Tracker

__all__ = ["app"]


def app(
    source: Tracker | str | os.PathLike[str] | PostgresUrl | None = None,
    *,
    cache_ttl: float = 1.0,
) -> Any:
    """The ASGI app (a FastAPI instance) over ``source``: a tracker, a DuckDB path, a
    ``postgresql://`` URL (served without API tokens) or ``None``.

    ``cache_ttl`` is how long an answer is reused for identical requests (seconds): the
    dashboard and API show calls at most that much later than they are stored. After it,
    an answer is still reused while the database files are unchanged (two ``stat``
    calls), for up to 30 seconds; when they change, an answer under 10 seconds old is
    served while its successor is computed in the background.
    """
    try:
        from .web import create_app
    except ImportError as exc:  # pragma: no cover - the extra is installed in tests
        raise ImportError(
            f"tokentrail serve needs FastAPI and uvicorn: pip install 'tokentrail[serve]' ({exc})"
        ) from None
    return create_app(source, cache_ttl=cache_ttl)
