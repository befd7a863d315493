"""The README's OpenTelemetry lines, run as they are: spans reach an OTLP/HTTP receiver.

A child process runs the README block (SDK ``TracerProvider``, ``BatchSpanProcessor``,
the OTLP/HTTP protobuf exporter, ``Tracker(otel=True)``) and makes one real LangChain call to
the loopback wire server; a small ``http.server`` receiver on 127.0.0.1 in this test takes
the export and decodes it with ``opentelemetry-proto``. The span must equal the stored row.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.conftest import read_rows
from tests.otel_support import expected_attributes, row_times_ns

ROOT = Path(__file__).resolve().parent.parent


class Receiver:
    """An OTLP/HTTP traces endpoint on loopback that keeps every request it decodes."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.paths: list[str] = []
        self.content_types: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                receiver.paths.append(self.path)
                receiver.content_types.append(self.headers.get("Content-Type", ""))
                receiver.requests.append(request)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


def _readme_block() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    [block] = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "OTLPSpanExporter" in b]
    return block


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return tuple(_value(v) for v in any_value.array_value.values)
    return getattr(any_value, kind)


def test_the_readme_lines_export_each_call_over_otlp_http(
    tmp_path: Path, receiver: Receiver, wire_server: Any
) -> None:
    wire_server.enqueue(input_tokens=900, cached_tokens=512, output_tokens=60)
    db = tmp_path / "usage.duckdb"
    program = (
        _readme_block()
        + f"""
from langchain_openai import ChatOpenAI

llm = ChatOpenAI(model="gpt-4o-mini", base_url={wire_server.openai_base_url!r}, api_key="test",
                 max_retries=0)
llm.invoke("hi", config={{"callbacks": [tracker.langchain(user_id="u7", tags=["otlp"])]}})
tracker.close()
"""  # the provider's exit hook flushes the batch processor
    )
    env = {
        **os.environ,
        "TOKENTRAIL_DB": str(db),
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_SERVICE_NAME": "readme-app",
        "LANGSMITH_TRACING": "false",
    }
    env.pop("TOKENTRAIL_OTEL", None)
    done = subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]

    assert receiver.paths == ["/v1/traces"]
    assert receiver.content_types == ["application/x-protobuf"]
    [request] = receiver.requests
    [resource_spans] = request.resource_spans
    resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
    assert resource["service.name"] == "readme-app"
    [scope_spans] = resource_spans.scope_spans
    assert scope_spans.scope.name == "tokentrail"
    [span] = scope_spans.spans

    from tokentrail import Tracker

    with Tracker(db) as reader:
        [row] = read_rows(reader)
    assert span.name == "chat gpt-4o-mini"
    assert span.kind == span.SPAN_KIND_CLIENT
    assert (span.start_time_unix_nano, span.end_time_unix_nano) == row_times_ns(row)
    assert {a.key: _value(a.value) for a in span.attributes} == expected_attributes(row)
    assert row["cache_read_tokens"] == 512 and row["user_id"] == "u7"
