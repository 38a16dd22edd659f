"""A local stand-in for a tracing service: takes whatever a tracer exports and counts it.

    python bench/sink.py       # prints its port, then serves until stdin closes or it is killed

Any POST or GET is answered 200 (keep-alive, HTTP/1.1) with what the client needs to go on: `GET /info`
as hosted LangSmith answers it (multipart ingestion with zstd compression on, so the langsmith client
takes the path it takes against the real service), OTLP/HTTP paths (`…/v1/traces`) an empty protobuf
message (an empty ExportTraceServiceResponse), everything else `{}`. It counts requests and bytes
received (as sent: compressed if compressed) and, decoding the bodies as they come:

- `runs`: distinct LangSmith run ids in `/runs/multipart` (zstd or plain multipart parts named
  `post.<id>`/`patch.<id>`) and `/runs/batch` (JSON `post`/`patch` lists);
- `spans`: spans in OTLP/HTTP protobuf exports (gzip or plain), walked on the wire format, no
  protobuf library needed; `scopes`: the same by instrumentation scope (OpenInference's, Langfuse's,
  and any other tracer the global TracerProvider switched on, such as FastAPI's own).

`GET /__sink__` answers these counts as JSON (not counted itself); `?runs=N&wait=S` answers once N runs
are counted, or S seconds passed. The sink is a process of its own,
so the bench can tell its CPU apart from the server's and its own.
"""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# What hosted LangSmith's /info says (the fields the client reads).
INFO = {"version": "sink", "batch_ingest_config": {
    "use_multipart_endpoint": True, "size_limit": 100, "size_limit_bytes": 20_971_520,
    "scale_up_qsize_trigger": 1000, "scale_up_nthreads_limit": 16, "scale_down_nempty_trigger": 4},
    "instance_flags": {"zstd_compression_enabled": True}}
RUN_PART = re.compile(rb'name="(?:post|patch)\.([0-9a-fA-F-]{36})"')


def otlp_spans(buf: bytes) -> dict[str, int]:
    """Spans in an ExportTraceServiceRequest by instrumentation scope: resource_spans (1) → scope_spans
    (2) → scope (1) → name (1), and spans (2)."""
    def fields(b: bytes, want: int) -> list[bytes]:
        out, i, n = [], 0, len(b)
        while i < n:
            key, i = _varint(b, i)
            number, wire = key >> 3, key & 7
            if wire == 0:
                _, i = _varint(b, i)
            elif wire == 1:
                i += 8
            elif wire == 5:
                i += 4
            elif wire == 2:
                size, i = _varint(b, i)
                if number == want:
                    out.append(b[i:i + size])
                i += size
            else:
                raise ValueError(f"wire type {wire}")
        return out

    out: dict[str, int] = {}
    for rs in fields(buf, 1):
        for ss in fields(rs, 2):
            scope = b"".join(fields(b"".join(fields(ss, 1)), 1)).decode(errors="replace")
            out[scope] = out.get(scope, 0) + len(fields(ss, 2))
    return out


def _varint(b: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = b[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7


class _Counts:
    def __init__(self) -> None:
        self.lock = threading.Condition()  # notified once a request is counted whole (`Sink.counts(runs=…)` waits on it)
        self.requests = self.bytes = self.errors = 0
        self.scopes: dict[str, int] = {}
        self.run_ids: set[bytes] = set()
        self.paths: dict[str, int] = {}

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"requests": self.requests, "bytes": self.bytes, "runs": len(self.run_ids),
                    "spans": sum(self.scopes.values()), "scopes": dict(self.scopes), "decode_errors": self.errors,
                    "paths": dict(self.paths)}


def _decode(path: str, encoding: str, body: bytes, counts: _Counts) -> None:
    if encoding == "gzip":
        body = gzip.decompress(body)
    elif encoding == "zstd":
        import zstandard

        body = zstandard.ZstdDecompressor().decompressobj().decompress(body)
    if path.endswith("/v1/traces"):
        scopes = otlp_spans(body)
        with counts.lock:
            for scope, n in scopes.items():
                counts.scopes[scope] = counts.scopes.get(scope, 0) + n
    elif path.endswith("/runs/multipart"):
        ids = RUN_PART.findall(body)
        with counts.lock:
            counts.run_ids.update(ids)
    elif path.endswith("/runs/batch"):
        data = json.loads(body)
        ids = [str(r.get("id", "")).encode() for key in ("post", "patch") for r in data.get(key) or ()]
        with counts.lock:
            counts.run_ids.update(ids)


def serve() -> None:
    counts = _Counts()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a: Any) -> None:
            pass

        def _answer(self, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _count(self, body: bytes) -> None:
            path = self.path.split("?", 1)[0]
            with counts.lock:
                counts.requests += 1
                counts.bytes += len(body)
                counts.paths[f"{self.command} {path}"] = counts.paths.get(f"{self.command} {path}", 0) + 1
            try:
                _decode(path, self.headers.get("Content-Encoding", "").lower(), body, counts)
            except Exception:  # counted, so a format the sink misreads is seen, not hidden
                with counts.lock:
                    counts.errors += 1
            with counts.lock:
                counts.lock.notify_all()

        def do_GET(self) -> None:
            if self.path.startswith("/__sink__"):  # ?runs=N&wait=S: answered once N runs are counted (or S passed)
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                runs, wait = int(query.get("runs", ["0"])[0]), float(query.get("wait", ["0"])[0])
                with counts.lock:
                    counts.lock.wait_for(lambda: len(counts.run_ids) >= runs, wait)
                return self._answer(json.dumps(counts.snapshot()).encode())
            self._count(b"")
            path = self.path.split("?", 1)[0]
            self._answer(json.dumps(INFO if path.endswith("/info") else {}).encode())

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))
            parts = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return b"".join(parts)

        def do_POST(self) -> None:
            body = self._body()
            self._count(body)
            if self.path.split("?", 1)[0].endswith("/v1/traces"):
                return self._answer(b"", "application/x-protobuf")
            self._answer(b"{}")

        do_PUT = do_PATCH = do_POST

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_address[1], flush=True)
    sys.stdin.read()  # until the bench closes our stdin (or exits)


class Sink:
    """The sink as a child process: `with Sink() as sink: sink.url, sink.pid, sink.counts()`."""

    def __enter__(self) -> Sink:
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve())], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        self.url = f"http://127.0.0.1:{self.port}"
        self.pid = self.proc.pid
        return self

    def counts(self, runs: int = 0, wait: float = 0.0) -> dict[str, Any]:
        """What the sink has counted; with `runs`, once it has counted that many runs (at most `wait` s)."""
        with urllib.request.urlopen(f"{self.url}/__sink__?runs={runs}&wait={wait}", timeout=wait + 30) as r:
            return json.loads(r.read())

    def __exit__(self, *exc: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


if __name__ == "__main__":
    serve()
