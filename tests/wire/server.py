"""The loopback HTTP server: routes, scripting (queue of replies), request log."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from . import completions, formats
from .formats import Reply

__all__ = ["Received", "WireServer"]


@dataclass
class Received:
    """One request the server received (``body`` is the parsed JSON, or ``{}``)."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    ts: float = field(default_factory=time.time)

    @property
    def model(self) -> str | None:
        """The ``model`` of the request body."""
        value = self.body.get("model")
        return None if value is None else str(value)

    @property
    def stream(self) -> bool:
        """True when the request asked for a stream."""
        return bool(self.body.get("stream"))


class _Server(ThreadingHTTPServer):
    # The default listen backlog (5) refuses connections when tests fire dozens at once.
    request_queue_size = 256
    daemon_threads = True


class WireServer:
    """A loopback server answering in OpenAI and Anthropic wire formats; see the package doc."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.default = Reply()
        self.requests: list[Received] = []
        #: ``fn(received) -> Reply | None``: consulted before the queue (None = fall through).
        self.responder: Callable[[Received], Reply | None] | None = None
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._in_flight = 0
        self.max_in_flight = 0
        self.disconnects = 0
        self._httpd = _Server((host, port), _make_handler(self))
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    # ----------------------------------------------------------------- addresses
    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (Anthropic clients take this as ``base_url``)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1`` (OpenAI clients take this as ``base_url``)."""
        return f"{self.base_url}/v1"

    anthropic_base_url = base_url

    # ----------------------------------------------------------------- scripting
    def enqueue(self, *replies: Reply, **kwargs: Any) -> None:
        """Queue replies for the next requests, in order (``enqueue(output_tokens=3)`` works)."""
        with self._lock:
            if kwargs:
                self._queue.append(Reply(**kwargs))
            self._queue.extend(replies)

    def set_default(self, reply: Reply | None = None, **kwargs: Any) -> Reply:
        """Set the reply used when the queue is empty; returns it."""
        self.default = reply if reply is not None else Reply(**kwargs)
        return self.default

    def reset(self) -> None:
        """Forget queued replies, the request log and counters; default back to ``Reply()``."""
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            self.default = Reply()
            self.responder = None
            self.max_in_flight = 0
            self.disconnects = 0

    @property
    def request_count(self) -> int:
        """How many requests reached the server."""
        with self._lock:
            return len(self.requests)

    def count(self, path: str | None = None) -> int:
        """Requests received, optionally only those to ``path`` (e.g. ``/v1/messages``)."""
        with self._lock:
            return sum(1 for r in self.requests if path is None or r.path == path)

    def bodies(self, path: str | None = None) -> list[dict[str, Any]]:
        """The JSON bodies received, in arrival order."""
        with self._lock:
            return [r.body for r in self.requests if path is None or r.path == path]

    def _next_reply(self, received: Received) -> Reply:
        responder = self.responder
        if responder is not None:
            chosen = responder(received)
            if chosen is not None:
                return chosen
        with self._lock:
            return self._queue.popleft() if self._queue else self.default

    def _record(self, received: Received) -> None:
        with self._lock:
            self.requests.append(received)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _done(self) -> None:
        with self._lock:
            self._in_flight -= 1

    # ----------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Stop serving and release the port."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> WireServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<WireServer {self.base_url} requests={self.request_count}>"


def _make_handler(server: WireServer) -> type[BaseHTTPRequestHandler]:  # noqa: C901 - the handler class it defines inside counts toward it
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                self._json(200, {"object": "list", "data": []})
            else:
                self._json(
                    404, {"error": {"message": "not found", "type": "invalid_request_error"}}
                )

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                body = {}
            if not isinstance(body, dict):
                body = {"_": body}
            path = self.path.split("?", 1)[0]
            received = Received("POST", path, {k.lower(): v for k, v in self.headers.items()}, body)
            server._record(received)
            try:
                self._route(path, received)
            except (BrokenPipeError, ConnectionResetError):
                with server._lock:
                    server.disconnects += 1
                self.close_connection = True
            finally:
                server._done()

        def _route(self, path: str, received: Received) -> None:
            body = received.body
            is_anthropic = path.endswith("/messages") or path.endswith("/messages/count_tokens")
            if path.endswith("/messages/count_tokens"):
                self._json(200, {"input_tokens": server.default.input_tokens})
                return
            if not (
                path.endswith("/completions")
                or path.endswith("/embeddings")
                or path.endswith("/responses")
                or path.endswith("/messages")
            ):
                self._json(404, formats.openai_error(404, Reply(error_message=f"no route {path}")))
                return
            reply = server._next_reply(received)
            if reply.delay:
                time.sleep(reply.delay)
            if reply.status >= 400:
                err = (
                    formats.anthropic_error(reply.status, reply)
                    if is_anthropic
                    else formats.openai_error(reply.status, reply)
                )
                # Tell the SDKs not to retry: one scripted error is one request.
                self._json(reply.status, err, reply, {"x-should-retry": "false"})
                return
            if path.endswith("/messages"):
                mid = f"msg_{uuid.uuid4().hex[:24]}"
                if received.stream:
                    self._sse(formats.anthropic_stream_events(reply, body, mid), reply, named=True)
                else:
                    self._json(200, formats.anthropic_message(reply, body, mid), reply)
            elif path.endswith("/chat/completions"):
                cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
                if received.stream:
                    chunks = formats.openai_chat_chunks(reply, body, cid)
                    self._sse([("", c) for c in chunks], reply, named=False, done=True)
                else:
                    self._json(200, formats.openai_chat(reply, body, cid), reply)
            elif path.endswith("/completions"):  # the legacy Completions API
                cid = f"cmpl-{uuid.uuid4().hex[:24]}"
                if received.stream:
                    chunks = completions.openai_completion_chunks(reply, body, cid)
                    self._sse([("", c) for c in chunks], reply, named=False, done=True)
                else:
                    self._json(200, completions.openai_completion(reply, body, cid), reply)
            elif path.endswith("/embeddings"):
                self._json(200, formats.openai_embeddings(reply, body), reply)
            else:
                rid = f"resp_{uuid.uuid4().hex[:24]}"
                if received.stream:
                    self._sse(formats.openai_responses_events(reply, body, rid), reply, named=True)
                else:
                    self._json(200, formats.openai_responses(reply, body, rid), reply)

        def _headers(self, reply: Reply | None) -> dict[str, str]:
            rid = (reply.request_id if reply else None) or f"req_{uuid.uuid4().hex[:20]}"
            out = {"x-request-id": rid, "request-id": rid}
            if reply is not None:
                out.update(reply.headers)
            return out

        def _json(
            self,
            status: int,
            payload: dict[str, Any],
            reply: Reply | None = None,
            extra: dict[str, str] | None = None,
        ) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in {**self._headers(reply), **(extra or {})}.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()

        def _sse(
            self,
            events: list[tuple[str, dict[str, Any]]],
            reply: Reply,
            *,
            named: bool,
            done: bool = False,
        ) -> None:
            # No Content-Length: the stream ends when the connection closes.
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            for k, v in self._headers(reply).items():
                self.send_header(k, v)
            self.end_headers()
            self.close_connection = True
            for name, data in events:
                prefix = f"event: {name}\n" if named and name else ""
                self.wfile.write(f"{prefix}data: {json.dumps(data)}\n\n".encode())
                self.wfile.flush()
                if reply.chunk_delay:
                    time.sleep(reply.chunk_delay)
            if done:
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

    return Handler
