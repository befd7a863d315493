"""A throwaway PostgreSQL cluster for the tests that need a real server.

:func:`start` runs ``initdb`` in a temporary folder and starts ``postgres`` on a free
loopback port with its unix socket in that folder; :meth:`Server.stop` stops it and the
folder goes. ``initdb`` refuses to run as root, so as root the cluster is made and run as
the ``postgres`` user (``runuser -u postgres --``), which Debian's package creates.

Where the binaries are missing the tests are skipped with the command that installs them,
unless ``TOKENTRAIL_REQUIRE_POSTGRES=1`` is set (``.ci/run`` sets it): then it is a failure,
so CI can never pass without having run them.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

INSTALL_HINT = (
    "PostgreSQL is not installed: `sudo apt-get install postgresql` (Debian/Ubuntu) "
    "to run the PostgreSQL tests"
)
REQUIRE_VAR = "TOKENTRAIL_REQUIRE_POSTGRES"
USER = "tokentrail"


def bin_dir() -> Path | None:
    """The folder holding ``initdb`` and ``postgres`` (Debian's newest version first)."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(candidate, "initdb")):
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def unavailable(reason: str) -> None:
    """Skip the test, or fail it under ``TOKENTRAIL_REQUIRE_POSTGRES=1``."""
    if os.environ.get(REQUIRE_VAR) == "1":
        pytest.fail(f"{reason} ({REQUIRE_VAR}=1 makes this a failure)")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """One running cluster: ``url`` over TCP, ``socket_url`` over the unix socket."""

    bin: Path
    folder: Path
    port: int
    as_postgres: bool

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def url(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/postgres"

    @property
    def socket_url(self) -> str:
        # A unix socket as the host: psycopg takes a directory path in ``host``.
        return f"postgresql://{USER}@/postgres?host={self.folder}&port={self.port}"

    def database_url(self, name: str, *, unix: bool = False) -> str:
        """The URL of database ``name`` (created by :meth:`create_database`)."""
        if unix:
            return f"postgresql://{USER}@/{name}?host={self.folder}&port={self.port}"
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{name}"

    def create_database(self, name: str) -> str:
        """Create an empty database ``name`` (letters, digits, ``_``) and return its TCP URL."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        return self.database_url(name)

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = list(args)
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True, timeout=120)

    def pg_ctl(self, action: str) -> None:
        """``start``, ``stop`` (fast) or ``restart`` the server, waiting until done."""
        args = [str(self.bin / "pg_ctl"), action, "-D", str(self.data), "-w", "-t", "60"]
        if action in ("stop", "restart"):
            args += ["-m", "fast"]
        if action in ("start", "restart"):
            args += ["-l", str(self.folder / "server.log")]
        self._run(*args)

    def stop(self) -> None:
        """Stop the server (if running); the folder is removed by :func:`start`'s caller."""
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._run(
                str(self.bin / "pg_ctl"), "stop", "-D", str(self.data), "-m", "immediate", "-w",
                check=False,
            )  # fmt: skip


def start() -> Server:
    """Make and start a throwaway cluster (skips or fails the test where it cannot)."""
    found = bin_dir()
    if found is None:
        unavailable(INSTALL_HINT)
        raise AssertionError("unreachable")
    as_postgres = os.geteuid() == 0
    folder = Path(tempfile.mkdtemp(prefix="tokentrail-pg-"))
    if as_postgres:
        try:
            shutil.chown(folder, "postgres", "postgres")
        except (LookupError, OSError) as exc:
            shutil.rmtree(folder, ignore_errors=True)
            unavailable(f"running as root without a 'postgres' user to run PostgreSQL: {exc}")
        os.chmod(folder, 0o755)
    server = Server(found, folder, _free_port(), as_postgres)
    try:
        server._run(
            str(found / "initdb"), "-D", str(server.data), "-U", USER,
            "--auth=trust", "--encoding=UTF8", "--no-sync", "-A", "trust",
        )  # fmt: skip
        options = [
            "listen_addresses='127.0.0.1'",
            f"port={server.port}",
            f"unix_socket_directories='{folder}'",
            "max_connections=200",
            "fsync=off",  # a throwaway cluster: durability against power loss is moot
            "synchronous_commit=off",
            "full_page_writes=off",
            "shared_buffers=64MB",
        ]
        with open(server.data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write("\n" + "\n".join(options) + "\n")
        server.pg_ctl("start")
        _wait_ready(server)
    except subprocess.CalledProcessError as exc:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
        unavailable(f"could not start PostgreSQL: {exc.stderr or exc.stdout}")
    return server


def _wait_ready(server: Server, limit: float = 30.0) -> None:
    import psycopg

    deadline = time.monotonic() + limit
    while True:
        try:
            with psycopg.connect(server.url, connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
