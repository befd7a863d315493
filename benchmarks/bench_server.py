"""``tokentrail serve`` under load: 50 concurrent clients on 1M rows.

Set-up: the 1M-row database of ``bench_analytics`` (a month, 9 models, 200 users), one
admin token and 25 user tokens, ``tokentrail serve`` in its own process (uvicorn, one
worker, default cache), and an application process recording 10 calls/s into the same
database through a ``Tracker`` all along, so that answers go stale as they would in use.

* **Load**: 50 clients (10 with the admin token, 40 spread over the 25 users) each ask
  ``stats``, ``history`` (50 rows) and ``usage-by-period`` (day) in turn, as fast as
  answers come (no think time), for ``DURATION`` seconds after a warm-up; p50/p95/p99 per
  endpoint. Goal: p95 under 100 ms.
* **Cold cost**: each endpoint asked alone with a key never asked before (nothing cached),
  admin and one user: what a cache miss costs.
* **One dashboard refresh**: the requests the page makes when new calls arrived (stats,
  today's stats, usage-by-period, history, projection, budgets), all cold, one after the
  other; and the poll it makes every 2 s when nothing changed.

The load generator runs on the same machine as the server (and the recording app), so
the figures include their competition for the CPU.

Tried and left out: ``SET threads = 1`` on the server's read connections took the
saturating p95 from ~106 ms to ~59 ms, but refreshes then kept up less: a stored call took
7-8 s to show (instead of 2-5 s) and one did not show within 15 s. Freshness won.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

CLIENTS = 50
DURATION = 30.0
WARMUP = 5.0
USERS = 25
ENDPOINTS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("stats", "/api/tokens/stats", {}),
    ("history", "/api/tokens/history", {"limit": "50"}),
    ("usage-by-period", "/api/tokens/usage-by-period", {"period": "day"}),
)
_CLI = [sys.executable, "-c", "from tokentrail.cli import main; main()"]

_WRITER = """
import random, sys, time
from tokentrail import Tracker
tracker = Tracker(sys.argv[1])
rng = random.Random(3)
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    tracker.record(model=rng.choice(["gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5"]),
                   usage={"input_tokens": rng.randint(100, 5000), "output_tokens": rng.randint(10, 800)},
                   user_id=f"user-{rng.randrange(USERS)}", operation=rng.choice(["chat", "rag-answer"]))
    time.sleep(0.1)
tracker.close()
""".replace("USERS", str(USERS))


def _token(db: Path, *args: str) -> str:
    out = subprocess.run(
        [*_CLI, "--db", str(db), "token", "create", *args, "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    token: str = json.loads(out)["token"]
    return token


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """One keep-alive HTTP/1.1 GET on an open connection; its status code.

    A hand-written client: httpx spends several times more CPU per request than the
    server does, and shares the machine with it.
    """
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def _load(
    port: int, tokens: list[str], duration: float, warmup: float, pause: float
) -> dict[str, list[float]]:
    """Each client asks the endpoints in turn, ``pause`` seconds between answer and ask."""
    from urllib.parse import urlencode

    latencies: dict[str, list[float]] = {name: [] for name, _p, _q in ENDPOINTS}
    errors: list[str] = []
    start = time.perf_counter()
    measure_from = start + warmup
    stop = measure_from + duration

    async def one(i: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        requests = [
            (
                name,
                (
                    f"GET {path}{'?' + urlencode(params) if params else ''} HTTP/1.1\r\n"
                    f"Host: 127.0.0.1:{port}\r\nAuthorization: Bearer {tokens[i]}\r\n\r\n"
                ).encode(),
            )
            for name, path, params in ENDPOINTS
        ]
        k = i  # clients start on different endpoints
        await asyncio.sleep(pause * (i / CLIENTS))  # spread the paced clients out
        try:
            while time.perf_counter() < stop:
                name, request = requests[k % len(requests)]
                k += 1
                t0 = time.perf_counter()
                status = await _get(reader, writer, request)
                t1 = time.perf_counter()
                if status != 200:
                    errors.append(f"{name}: {status}")
                elif t0 >= measure_from:
                    latencies[name].append((t1 - t0) * 1000)
                if pause:
                    await asyncio.sleep(pause)
        finally:
            writer.close()

    await asyncio.gather(*(one(i) for i in range(CLIENTS)))
    latencies["errors"] = [float(len(errors))]
    return latencies


def _freshness(db: Path, base: str, token: str, until: float, out: dict[str, list[float]]) -> None:
    """While the load runs: store a marked call, then time until the admin's history (the
    very answer the clients are asking for) shows it. Also times the store's flush, which
    waits for the file while the server reads it."""
    import httpx

    from tokentrail import Tracker

    tracker = Tracker(db)
    auth = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            i = 0
            while time.monotonic() + 5 < until:
                time.sleep(2.0)
                i += 1
                mark = f"probe-{i}-{time.time_ns()}"
                tracker.record(
                    model="gpt-4o",
                    usage={"input_tokens": 10, "output_tokens": 1},
                    user_id="user-0",
                    operation=mark,
                )
                t0 = time.monotonic()
                tracker.flush()
                stored = time.monotonic()
                out["flush"].append((stored - t0) * 1000)
                while True:
                    page = client.get("/api/tokens/history", params={"limit": "50"}, headers=auth)
                    if any(r["operation"] == mark for r in page.json()["usage"]):
                        out["lag"].append((time.monotonic() - stored) * 1000)
                        break
                    if time.monotonic() > max(until, stored + 15):  # 15 s of grace
                        out["unseen"].append(1.0)
                        break
                    time.sleep(0.05)
    finally:
        tracker.close()


def _cold(base: str, token: str, extra: dict[str, str], repeat: int = 5) -> dict[str, float]:
    """Median ms of each endpoint asked with a key never asked before (no cache)."""
    import httpx

    out: dict[str, float] = {}
    with httpx.Client(base_url=base, timeout=60) as client:
        for name, path, params in ENDPOINTS:
            times = []
            for i in range(repeat):
                # A distinct, equivalent 'until' makes a distinct cache key.
                fresh = {**params, **extra, "until": f"2030-01-01T00:00:00.{i + 1:06d}Z"}
                t0 = time.perf_counter()
                r = client.get(path, params=fresh, headers={"Authorization": f"Bearer {token}"})
                times.append((time.perf_counter() - t0) * 1000)
                r.raise_for_status()
            out[name] = statistics.median(times)
    return out


def _refresh(base: str, token: str) -> tuple[float, float]:
    """(ms of one cold full dashboard refresh, ms of one idle poll)."""
    import httpx

    auth = {"Authorization": f"Bearer {token}"}
    stamp = f"2030-01-01T00:00:00.{int(time.time() * 1000) % 999999:06d}Z"
    requests = [
        ("/api/tokens/stats", {"since": "30d", "until": stamp}),
        ("/api/tokens/stats", {"since": "today", "until": stamp}),
        ("/api/tokens/usage-by-period", {"period": "day", "since": "30d", "until": stamp}),
        ("/api/tokens/history", {"limit": "25", "since": "30d", "until": stamp}),
        ("/api/tokens/projection", {"model": "bench-" + stamp}),  # a key not cached
        ("/api/budgets", {}),
    ]
    with httpx.Client(base_url=base, timeout=60) as client:
        t0 = time.perf_counter()
        for path, params in requests:
            client.get(path, params=params, headers=auth).raise_for_status()
        full = (time.perf_counter() - t0) * 1000
        polls = []
        for _ in range(5):
            t1 = time.perf_counter()
            client.get(requests[0][0], params=requests[0][1], headers=auth).raise_for_status()
            polls.append((time.perf_counter() - t1) * 1000)
    return full, statistics.median(polls)


def _row(
    name: str, value: float, unit: str, goal: str = "", met: bool | None = None
) -> dict[str, Any]:
    return {"name": name, "value": round(value, 1), "unit": unit, "goal": goal, "met": met}


def run(quick: bool = False) -> list[dict[str, Any]]:
    """The load, cold-cost and refresh figures (``quick``: 100k rows, 10 s of load)."""
    import httpx

    from benchmarks.bench_analytics import build

    rows = 100_000 if quick else 1_000_000
    duration = 10.0 if quick else DURATION
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="tokentrail-bench-serve-") as tmp:
        db = Path(tmp) / "usage.duckdb"
        build(db, rows)
        admin = _token(db, "--admin")
        users = [_token(db, "--user", f"user-{u}") for u in range(USERS)]
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [*_CLI, "--db", str(db), "serve", "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        writer: subprocess.Popen[bytes] | None = None
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(base + "/api/health", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("tokentrail serve did not start")
                time.sleep(0.1)

            cold_admin = _cold(base, admin, {})
            cold_user = _cold(base, users[7], {})
            for name, ms in cold_admin.items():
                results.append(_row(f"cold {name}, admin (all {rows:,} rows)", ms, "ms"))
            for name, ms in cold_user.items():
                results.append(_row(f"cold {name}, one user's token", ms, "ms"))
            full, poll = _refresh(base, admin)
            results.append(
                _row(
                    "one admin dashboard refresh, cold (6 requests, 9 scans, no budgets)",
                    full,
                    "ms",
                )
            )
            results.append(_row("one idle dashboard poll (cached, 0 scans)", poll, "ms"))

            writer = subprocess.Popen(
                [sys.executable, "-c", _WRITER, str(db), str(2 * (WARMUP + duration) + 20)]
            )
            tokens = [admin if i < 10 else users[i % USERS] for i in range(CLIENTS)]
            for label, pause in (("paced, 1 ask/s each", 1.0), ("saturating, no pause", 0.0)):
                load1 = os.getloadavg()[0]
                fresh: dict[str, list[float]] = {"flush": [], "lag": [], "unseen": []}
                probe = threading.Thread(
                    target=_freshness,
                    args=(db, base, admin, time.monotonic() + WARMUP + duration, fresh),
                )
                probe.start()
                latencies = asyncio.run(_load(port, tokens, duration, WARMUP, pause))
                probe.join()
                load2 = os.getloadavg()[0]
                for key, what in (
                    ("flush", "a stored call's flush (waits for the file)"),
                    ("lag", "stored call to the clients' answer showing it"),
                ):
                    values = fresh[key]
                    results.append(_row(f"{what}, {label}: median", _percentile(values, 0.5), "ms"))
                    results.append(_row(f"{what}, {label}: max", max(values or [0]), "ms"))
                unseen = len(fresh["unseen"])
                results.append(
                    _row(f"stored calls not shown within 15 s, {label}", unseen, "calls")
                )
                errors = int(latencies.pop("errors")[0])
                for name, values in latencies.items():
                    p95 = _percentile(values, 0.95)
                    what = f"{name}, {CLIENTS} clients {label}"
                    results.append(_row(f"{what}: p50", _percentile(values, 0.5), "ms"))
                    results.append(_row(f"{what}: p95", p95, "ms", "< 100 ms", p95 < 100))
                    results.append(_row(f"{what}: p99", _percentile(values, 0.99), "ms"))
                    results.append(_row(f"{what}: answers/s", len(values) / duration, "1/s"))
                results.append(_row(f"errors ({label})", errors, "responses", "0", errors == 0))
                results.append(
                    _row(f"1-min load average before / after ({label})", load1, f"/ {load2:.1f}")
                )
        finally:
            if writer is not None:
                writer.terminate()
                writer.wait(30)
            server.terminate()
            server.wait(30)
    return results


def main() -> None:
    """Run once and write ``benchmarks/RESULTS_server.md`` (``--quick`` prints only)."""
    from benchmarks.__main__ import HERE, render

    quick = "--quick" in sys.argv
    rows = run(quick=quick)
    for result in rows:
        print(result)
    if not quick:
        out = HERE / "RESULTS_server.md"
        out.write_text(render({"server": rows}, {}, quick), encoding="utf-8")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
