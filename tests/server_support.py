"""Run the real ``tokentrail serve`` (uvicorn in a subprocess) on a free loopback port.

Shared by the API and dashboard tests: a database with known rows written through a
real :class:`tokentrail.Tracker`, tokens made with the CLI, the server as a child process.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx

__all__ = ["CLI", "Server", "cli", "free_port", "write_known_rows"]

#: The ``tokentrail`` command run from this interpreter.
CLI = [sys.executable, "-c", "from tokentrail.cli import main; main()"]


def cli(db: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``tokentrail --db DB ARGS...`` and return the finished process."""
    return subprocess.run(
        [*CLI, "--db", str(db), *args], capture_output=True, text=True, check=check, timeout=120
    )


def free_port() -> int:
    """A TCP port nobody listens on right now (on 127.0.0.1)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """``tokentrail serve`` in a child process; ``url``, ``get``, ``post``, ``stop``."""

    def __init__(
        self,
        db: Path | str,
        *extra: str,
        host: str = "127.0.0.1",
        cache_ttl: float = 0.2,
        log_dir: Path | None = None,
    ):
        self.port = free_port()
        self.host = host
        self.url = f"http://{host}:{self.port}"
        folder = log_dir if log_dir is not None else Path(db).parent  # a URL: give log_dir
        self.log = folder / f"serve-{self.port}.log"
        self._log = self.log.open("w")
        self.proc = subprocess.Popen(
            [
                *CLI,
                "--db",
                str(db),
                "serve",
                "--host",
                host,
                "--port",
                str(self.port),
                "--cache-ttl",
                str(cache_ttl),
                *extra,
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited: {self.log.read_text()}")
            try:
                if httpx.get(self.url + "/api/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"serve did not start: {self.log.read_text()}")
            time.sleep(0.1)

    def get(self, path: str, token: str | None = None, **params: Any) -> httpx.Response:
        """GET ``path`` with an optional bearer token."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.get(self.url + path, params=params, headers=headers, timeout=30)

    def json(self, path: str, token: str | None = None, **params: Any) -> Any:
        """GET ``path`` and return its JSON, failing on any status but 200."""
        response = self.get(path, token, **params)
        assert response.status_code == 200, (path, response.status_code, response.text)
        return response.json()

    def post(self, path: str, body: Any, token: str | None = None) -> httpx.Response:
        """POST ``body`` as JSON."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.post(self.url + path, json=body, headers=headers, timeout=30)

    def stop(self) -> None:
        """Stop the child and close its log."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def create_token(db: Path, *args: str) -> str:
    """``tokentrail token create ARGS --json`` and return the token."""
    out = cli(db, "token", "create", *args, "--json").stdout
    token: str = json.loads(out)["token"]
    return token


#: (days ago, hour, user, operation, model, provider, input, output): the known rows.
KNOWN: Sequence[tuple[int, int, str, str, str, str, int, int]] = (
    (0, 0, "u1", "chat", "gpt-4o", "openai", 1200, 300),
    (0, 0, "u2", "summarize", "claude-sonnet-4-5", "anthropic", 9000, 700),
    (1, 9, "u1", "rag-answer", "gpt-4o-mini", "openai", 4000, 250),
    (1, 10, "u1", "chat", "gpt-4o", "openai", 800, 120),
    (2, 14, "u2", "chat", "gpt-4o", "openai", 2500, 900),
    (3, 8, "u3", "embed", "text-embedding-3-small", "openai", 700, 0),
    (5, 16, "u1", "summarize", "claude-sonnet-4-5", "anthropic", 15000, 1100),
    (9, 11, "u2", "rag-answer", "acme-experimental-1", "acme", 3000, 400),
    (12, 13, "u3", "chat", "gpt-4o-mini", "openai", 600, 80),
    (40, 12, "u1", "chat", "gpt-4o", "openai", 1000, 100),
)


def write_known_rows(tracker: Any, now: datetime | None = None) -> None:
    """Record :data:`KNOWN` through ``tracker`` (timestamps relative to ``now``) and flush."""
    now = now or datetime.now(timezone.utc)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    for i, (days, hour, user, op, model, provider, inp, out) in enumerate(KNOWN):
        ts = today - timedelta(days=days) + timedelta(hours=hour, minutes=i)
        if ts > now:  # today's rows early in the UTC day: keep them in the past
            ts = now - timedelta(minutes=len(KNOWN) - i)
        tracker.record(
            model=model,
            provider=provider,
            usage={"input_tokens": inp, "output_tokens": out},
            user_id=user,
            session_id=f"{user}-s{days}",
            operation=op,
            latency_ms=100.0 + i,
            ts=ts,
        )
    assert tracker.flush()
