"""An OTLP/HTTP collector on 127.0.0.1 for the tests: it keeps every request it gets (method, path,
headers, raw body) and answers as a collector does. Its handler thread only records: what arrived is
checked and decoded in the test's thread, where a wrong request fails the test with its own message
instead of a dropped connection. `answer(handler)` may answer instead (a redirect, a trickle, an error);
it returns True when it did."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, NamedTuple


class Request(NamedTuple):
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes


class Collector:
    def __init__(self, answer: Callable[[BaseHTTPRequestHandler], bool] | None = None):
        self.requests: list[Request] = []
        self.arrived = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.requests.append(Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                outer.arrived.set()
                if answer is not None and answer(self):
                    return
                self.send_response(200)  # an empty ExportTraceServiceResponse is zero bytes of protobuf
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_GET = _any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def bodies(self) -> bytes:
        return b"".join(r.body for r in self.requests)

    def exports(self) -> list[Any]:
        """Each POST as the ExportTraceServiceRequest it carries, after checking its content type."""
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

        out = []
        for r in self.requests:
            if r.method != "POST":
                continue
            assert r.headers.get("content-type") == "application/x-protobuf", r.headers.get("content-type")
            req = trace_service_pb2.ExportTraceServiceRequest()
            req.ParseFromString(r.body)
            out.append(req)
        return out

    def spans(self) -> list[Any]:
        return [s for req in self.exports() for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def attributes(span: Any) -> dict[str, Any]:
    """An OTLP span's attributes as a dict (arrays as lists of their strings)."""
    out = {}
    for kv in span.attributes:
        v = kv.value
        kind = v.WhichOneof("value")
        out[kv.key] = [x.string_value for x in v.array_value.values] if kind == "array_value" else getattr(v, kind)
    return out
