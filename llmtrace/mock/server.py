"""A scripted OpenAI-compatible HTTP server on 127.0.0.1, for offline demos and tests.

Serves /v1/chat/completions (plain, tool calls, parallel tool calls, SSE streaming with a final
usage chunk when asked), /v1/embeddings (deterministic bag-of-words vectors, so similar texts are
close) and /v1/models. /_mock/stats reports request counts; /_mock/reset zeroes them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
import re
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from llmtrace.mock.script import Fault, Script, choose_reply


def estimate_tokens(text: str) -> int:
    """Roughly what a BPE tokenizer gives for English: a token per ~4 characters."""
    return max(1, math.ceil(len(text) / 4)) if text else 0


def prompt_tokens(body: dict[str, Any]) -> int:
    total = 3
    for m in body.get("messages") or []:
        total += 4 + estimate_tokens(json.dumps(m.get("content"), ensure_ascii=False))
        if m.get("tool_calls"):
            total += estimate_tokens(json.dumps(m["tool_calls"]))
    if body.get("tools"):
        total += estimate_tokens(json.dumps(body["tools"]))
    return total


def embed(text: str, dim: int) -> list[float]:
    vec = [0.0] * dim
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big")
        vec[h % dim] += 1.0 if (h >> 32) & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [v / norm for v in vec]


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.by_path: dict[str, int] = {}
        self.by_status: dict[int, int] = {}
        self.bodies: list[dict[str, Any]] = []

    def record(self, path: str, status: int, body: dict[str, Any] | None) -> None:
        with self.lock:
            self.requests += 1
            self.by_path[path] = self.by_path.get(path, 0) + 1
            self.by_status[status] = self.by_status.get(status, 0) + 1
            if body is not None and len(self.bodies) < 1000:
                self.bodies.append(body)

    def as_dict(self) -> dict[str, Any]:
        with self.lock:
            return {
                "requests": self.requests,
                "by_path": dict(self.by_path),
                "by_status": {str(k): v for k, v in self.by_status.items()},
            }


class MockServer:
    def __init__(self, script: Script | None = None, host: str = "127.0.0.1", port: int = 0):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the mock server binds to loopback only")
        self.script = script or Script()
        self.stats = Stats()
        self._faults = list(self.script.faults)
        self._rng = random.Random(self.script.seed)
        self._lock = threading.Lock()
        self._counter = 0
        self.httpd = ThreadingHTTPServer((host, port), _make_handler(self))
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "MockServer":
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="llmtrace-mock", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> "MockServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def set_faults(self, faults: list[Any]) -> None:
        with self._lock:
            self._faults = [Fault.parse(f) for f in faults]

    def next_fault(self) -> Fault | None:
        with self._lock:
            if self._faults:
                return self._faults.pop(0)
            if self.script.fault_rate and self._rng.random() < self.script.fault_rate:
                return Fault(status=self._rng.choice(self.script.fault_statuses), retry_after_ms=1)
        return None

    def next_id(self) -> str:
        with self._lock:
            self._counter += 1
            return f"{self._counter:06d}"


def _make_handler(server: MockServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "llmtrace-mock/1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _read_body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                return json.loads(raw or b"{}")
            except ValueError:
                return {}

        def do_GET(self) -> None:
            path = self.path.split("?")[0].rstrip("/")
            if path == "/_mock/stats":
                return self._send_json(200, server.stats.as_dict())
            if path.endswith("/models"):
                server.stats.record(path, 200, None)
                return self._send_json(
                    200,
                    {"object": "list", "data": [{"id": server.script.model, "object": "model", "created": 0, "owned_by": "llmtrace-mock"}]},
                )
            self._send_json(404, {"error": {"message": f"no route {path}", "type": "invalid_request_error"}})

        def do_POST(self) -> None:
            path = self.path.split("?")[0].rstrip("/")
            body = self._read_body()
            if path == "/_mock/reset":
                server.stats.reset()
                if "faults" in body:
                    server.set_faults(body["faults"])
                return self._send_json(200, {"ok": True})
            if server.script.latency_ms:
                time.sleep(server.script.latency_ms / 1000)
            fault = server.next_fault()
            self._cut_after = fault.cut_after if fault is not None else None
            if fault is not None and self._apply_fault(path, fault, body):
                return
            if path.endswith("/chat/completions"):
                return self._chat(path, body)
            if path.endswith("/embeddings"):
                return self._embeddings(path, body)
            server.stats.record(path, 404, body)
            self._send_json(404, {"error": {"message": f"no route {path}", "type": "invalid_request_error"}})

        def _apply_fault(self, path: str, fault: Fault, body: dict[str, Any]) -> bool:
            if fault.drop:
                server.stats.record(path, 0, body)
                self.close_connection = True
                self.connection.shutdown(2) if hasattr(self.connection, "shutdown") else None
                return True
            if fault.timeout:
                time.sleep(fault.timeout)
                server.stats.record(path, 0, body)
                self.close_connection = True
                return True
            if fault.status == 200 or fault.cut_after is not None:
                return False
            headers = {}
            if fault.retry_after is not None:
                headers["retry-after"] = str(fault.retry_after)
            if fault.retry_after_ms is not None:
                headers["retry-after-ms"] = str(fault.retry_after_ms)
            kind = {
                400: "invalid_request_error", 401: "invalid_request_error", 403: "permission_error",
                404: "not_found_error", 429: "rate_limit_error",
            }.get(fault.status, "server_error")
            code = fault.code or {401: "invalid_api_key", 429: "rate_limit_exceeded"}.get(fault.status)
            message = {
                "insufficient_quota": "You exceeded your current quota, please check your plan and billing details.",
                "context_length_exceeded": "This model's maximum context length is 128000 tokens.",
            }.get(code or "", f"scripted fault: HTTP {fault.status}")
            server.stats.record(path, fault.status, body)
            self._send_json(fault.status, {"error": {"message": message, "type": kind, "param": None, "code": code}}, headers)
            return True

        def _chat(self, path: str, body: dict[str, Any]) -> None:
            content, calls, finish = choose_reply(server.script, body)
            rid = server.next_id()
            tool_calls = [
                {
                    "id": f"call_{rid}_{i}",
                    "type": "function",
                    "function": {
                        "name": c["name"],
                        "arguments": c["arguments"] if isinstance(c.get("arguments"), str) else json.dumps(c.get("arguments", {})),
                    },
                }
                for i, c in enumerate(calls)
            ]
            p_tokens = prompt_tokens(body)
            c_tokens = estimate_tokens(content or "") + sum(estimate_tokens(json.dumps(t["function"])) for t in tool_calls)
            usage = {
                "prompt_tokens": p_tokens,
                "completion_tokens": c_tokens,
                "total_tokens": p_tokens + c_tokens,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
            }
            common = {"id": f"chatcmpl-mock{rid}", "created": int(time.time()), "model": server.script.model, "system_fingerprint": "fp_llmtrace_mock"}
            server.stats.record(path, 200, body)
            if body.get("stream"):
                include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
                return self._stream(common, content, tool_calls, finish, usage if include_usage else None)
            message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
            if tool_calls:
                message["tool_calls"] = tool_calls
            self._send_json(
                200,
                {**common, "object": "chat.completion", "service_tier": "default",
                 "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}], "usage": usage},
            )

        def _stream(self, common: dict[str, Any], content: str | None, tool_calls: list[dict[str, Any]], finish: str, usage: dict[str, Any] | None) -> None:
            cut = self._cut_after
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            if cut is not None:  # chunked framing, so breaking off is a protocol error, not a clean end
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.close_connection = True
            sent = [0]

            def chunk(delta: dict[str, Any] | None, finish_reason: str | None = None, with_usage: Any = None) -> None:
                payload: dict[str, Any] = {**common, "object": "chat.completion.chunk"}
                payload["choices"] = [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
                if usage is not None:
                    payload["usage"] = with_usage
                data = b"data: " + json.dumps(payload).encode() + b"\n\n"
                if cut is None:
                    self.wfile.write(data)
                    return
                if sent[0] >= cut:
                    self.wfile.write(b"ffff\r\n" + data[:10])  # a chunk promised, never delivered
                    self.wfile.flush()
                    raise ConnectionAbortedError("scripted cut")
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()
                sent[0] += 1

            try:
                self._stream_body(chunk, content, tool_calls, finish, usage)
            except ConnectionAbortedError:
                self.connection.shutdown(2)
                return
            if cut is not None:
                self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def _stream_body(self, chunk: Any, content: str | None, tool_calls: list[dict[str, Any]], finish: str, usage: Any) -> None:
            chunk({"role": "assistant", "content": "" if not tool_calls else None, "refusal": None})
            if content:
                for piece in re.findall(r"\S+\s*|\s+", content):
                    chunk({"content": piece})
            for i, tc in enumerate(tool_calls):
                chunk({"tool_calls": [{"index": i, "id": tc["id"], "type": "function", "function": {"name": tc["function"]["name"], "arguments": ""}}]})
                args = tc["function"]["arguments"]
                for j in range(0, len(args), 8):
                    chunk({"tool_calls": [{"index": i, "function": {"arguments": args[j : j + 8]}}]})
            chunk({}, finish)
            if usage is not None:
                chunk(None, with_usage=usage)
            chunk_done = b"data: [DONE]\n\n"
            if self._cut_after is None:
                self.wfile.write(chunk_done)
            else:
                self.wfile.write(f"{len(chunk_done):x}\r\n".encode() + chunk_done + b"\r\n")

        def _embeddings(self, path: str, body: dict[str, Any]) -> None:
            inputs = body.get("input")
            if isinstance(inputs, str) or (isinstance(inputs, list) and inputs and isinstance(inputs[0], int)):
                inputs = [inputs]
            inputs = inputs or []
            dim = int(body.get("dimensions") or server.script.embedding_dim)
            data = []
            tokens = 0
            for i, item in enumerate(inputs):
                text = item if isinstance(item, str) else " ".join(str(t) for t in item)
                tokens += estimate_tokens(text)
                vec = embed(text, dim)
                if body.get("encoding_format") == "base64":
                    vec = base64.b64encode(struct.pack(f"<{dim}f", *vec)).decode()
                data.append({"object": "embedding", "index": i, "embedding": vec})
            server.stats.record(path, 200, body)
            self._send_json(
                200,
                {"object": "list", "data": data, "model": body.get("model", "text-embedding-3-small"),
                 "usage": {"prompt_tokens": tokens, "total_tokens": tokens}},
            )

    return Handler
