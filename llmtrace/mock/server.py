"""A scripted OpenAI-compatible HTTP server on 127.0.0.1, for offline demos and tests.

Routes (POST unless noted; a route matches on how the path ends, so /v1/… and /… both work):

- /v1/chat/completions: plain replies, tool calls (parallel too), SSE streaming with a final usage
  chunk when `stream_options.include_usage` asks for it, structured output (`response_format`
  json_schema / json_object) and forced tool calls (`tool_choice`).
- /v1/responses: the Responses API, whole or streamed (`event:`/`data:` SSE with sequence numbers,
  ending in response.completed; no [DONE]), with function tools, `text.format` structured output
  and `tool_choice`.
- /v1/messages: the Anthropic Messages API (what langchain-anthropic's ChatAnthropic posts to with
  ANTHROPIC_BASE_URL=http://127.0.0.1:PORT), whole or streamed; /v1/messages/count_tokens too.
- /v1/embeddings: deterministic bag-of-words vectors (similar texts are close), float or base64
  (`encoding_format`), `dimensions`; usage counts ~4 characters a token, or one per token id.
- /api/chat (Ollama) and /v1beta/models/MODEL:generateContent, …:streamGenerateContent?alt=sse
  (Gemini): see llmtrace.mock.providers.
- GET /v1/models: the script's model.
- GET /_mock/stats: request counts by path and status, and the token usage sent in successful
  replies, {"usage": {"input_tokens": N, "output_tokens": M}}: prompt/input tokens of chat,
  responses, messages and embeddings replies, completion/output tokens of the first three. A
  streamed chat reply that did not ask for usage sends none and adds nothing; a stream cut before
  its usage-carrying event adds nothing. POST /_mock/reset zeroes the stats and the sample
  counters, and with {"faults": [...]} sets the next faults. MockServer.stats holds the same in
  process (Stats.input_tokens / output_tokens).
- Control requests (POST /_mock/…) need the server's token in an `X-Mock-Token` header
  (MockServer.control_headers): 127.0.0.1 is open to every local user, and a web page's script
  cannot send that header cross-site without a preflight the server never answers. The token is
  random per server, or LLMTRACE_MOCK_TOKEN's value (for `llmtrace mock` driven from a shell).

Replies come from a reply script (llmtrace.mock.script documents its keys). Faults (status,
retry_after, timeout, drop, cut_after) apply to every POST route; on /v1/messages an error body has
Anthropic's shape ({"type": "error", "error": {"type": "rate_limit_error", ...}}). Each whole reply
leaves in one write with TCP_NODELAY, so a client's delayed ACK never stalls it (it used to cost
~40 ms a reply).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import os
import random
import re
import secrets
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from llmtrace.mock import payloads, providers
from llmtrace.mock.payloads import estimate_tokens, prompt_tokens
from llmtrace.mock.script import DEFAULT_MODEL, Conversation, Fault, Reply, Script, plan_reply

__all__ = ["MockServer", "Stats", "embed", "estimate_tokens", "prompt_tokens"]


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
        with self.lock:
            self.requests = 0
            self.by_path: dict[str, int] = {}
            self.by_status: dict[int, int] = {}
            self.bodies: list[dict[str, Any]] = []
            self.input_tokens = 0
            self.output_tokens = 0

    def record(self, path: str, status: int, body: dict[str, Any] | None) -> None:
        with self.lock:
            self.requests += 1
            self.by_path[path] = self.by_path.get(path, 0) + 1
            self.by_status[status] = self.by_status.get(status, 0) + 1
            if body is not None and len(self.bodies) < 1000:
                self.bodies.append(body)

    def add_usage(self, input_tokens: int, output_tokens: int = 0) -> None:
        """Token usage that a reply carried to the client."""
        with self.lock:
            self.input_tokens += input_tokens
            self.output_tokens += output_tokens

    def as_dict(self) -> dict[str, Any]:
        with self.lock:
            return {
                "requests": self.requests,
                "by_path": dict(self.by_path),
                "by_status": {str(k): v for k, v in self.by_status.items()},
                "usage": {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens},
            }


def request_key(api: str, body: dict[str, Any]) -> str:
    """Identical requests share a key: the route and the JSON body without `stream`/`stream_options`."""
    rest = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
    return hashlib.sha256((api + "\n" + json.dumps(rest, sort_keys=True, default=str)).encode()).hexdigest()


CONTROL_HEADER = "X-Mock-Token"


class MockServer:
    def __init__(self, script: Script | None = None, host: str = "127.0.0.1", port: int = 0,
                 control_token: str | None = None):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the mock server binds to loopback only")
        self.control_token = control_token or os.environ.get("LLMTRACE_MOCK_TOKEN") or secrets.token_urlsafe(24)
        self.script = script or Script()
        self.stats = Stats()
        self._faults = list(self.script.faults)
        self._rng = random.Random(self.script.seed)
        self._lock = threading.Lock()
        self._counter = 0
        self._seen: dict[str, int] = {}  # request key → how many identical requests were answered
        self.httpd = ThreadingHTTPServer((host, port), _make_handler(self))
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """What ANTHROPIC_BASE_URL should be: the anthropic SDK adds /v1/messages itself."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "MockServer":
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="llmtrace-mock", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> "MockServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def control_headers(self) -> dict[str, str]:
        """What a control request (POST /_mock/reset) must carry."""
        return {CONTROL_HEADER: self.control_token}

    def allows(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.control_token.encode())

    def reset(self) -> None:
        """Zero the stats and the sample counters (what POST /_mock/reset does)."""
        self.stats.reset()
        with self._lock:
            self._seen.clear()

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

    def reply_for(self, api: str, body: dict[str, Any], conv: Conversation | None = None) -> tuple[Conversation, Reply]:
        """The scripted reply; the n-th identical request (n from 0) gets sample n of a `samples` rule."""
        key = request_key(api, body)
        with self._lock:
            n = self._seen.get(key, 0)
            self._seen[key] = n + 1
        conv = conv or Conversation.for_api(api, body)
        return conv, plan_reply(self.script, conv, n)


_OPENAI_ERROR_TYPES = {
    400: "invalid_request_error", 401: "invalid_request_error", 403: "permission_error",
    404: "not_found_error", 429: "rate_limit_error",
}


def _make_handler(server: MockServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "llmtrace-mock/1"
        disable_nagle_algorithm = True  # small SSE writes go out at once

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _send_bytes(self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
            """Status line, headers and body in one write: a reply split in two lets the client's
            delayed ACK hold back the second part (~40 ms per reply)."""
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self._headers_buffer.append(b"\r\n")  # what end_headers() adds, without its flush
            self._headers_buffer.append(data)
            self.flush_headers()

        def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            self._send_bytes(status, json.dumps(payload).encode(), "application/json", headers)

        def _read_body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                return {}
            return body if isinstance(body, dict) else {}

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
            if path.startswith("/_mock/") and not server.allows(self.headers.get(CONTROL_HEADER)):
                return self._send_json(403, {"error": {"message": f"control requests need the server's {CONTROL_HEADER} header",
                                                       "type": "permission_error"}})
            if path == "/_mock/reset":
                server.reset()
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
            if path.endswith("/responses"):
                return self._responses(path, body)
            if path.endswith("/messages/count_tokens"):
                server.stats.record(path, 200, body)
                return self._send_json(200, {"input_tokens": payloads.messages_input_tokens(body)})
            if path.endswith("/messages"):
                return self._messages(path, body)
            if path.endswith("/embeddings"):
                return self._embeddings(path, body)
            if path.endswith("/api/chat"):
                return self._ollama(path, body)
            if path.endswith(":generateContent") or path.endswith(":streamGenerateContent"):
                return self._gemini(path, body)
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
            code = fault.code or {401: "invalid_api_key", 429: "rate_limit_exceeded"}.get(fault.status)
            message = {
                "insufficient_quota": "You exceeded your current quota, please check your plan and billing details.",
                "context_length_exceeded": "This model's maximum context length is 128000 tokens.",
            }.get(code or "", f"scripted fault: HTTP {fault.status}")
            server.stats.record(path, fault.status, body)
            if path.endswith("/messages") or path.endswith("/messages/count_tokens"):
                error = {"type": "error", "error": {"type": payloads.anthropic_error_type(fault.status), "message": message}}
                self._send_json(fault.status, error, headers)
                return True
            if path.endswith("/api/chat"):  # Ollama's error shape
                self._send_json(fault.status, {"error": message}, headers)
                return True
            if "Content" in path.rsplit(":", 1)[-1]:  # Gemini's
                self._send_json(fault.status, {"error": {"code": fault.status, "message": message, "status": "UNAVAILABLE"}}, headers)
                return True
            kind = _OPENAI_ERROR_TYPES.get(fault.status, "server_error")
            self._send_json(fault.status, {"error": {"message": message, "type": kind, "param": None, "code": code}}, headers)
            return True

        # --- streaming ---

        def _stream(self, frames: list[bytes], *, trailer: bytes | None = None, usage_at: int | None = None,
                    usage: tuple[int, int] | None = None, content_type: str = "text/event-stream") -> None:
            """Write SSE frames; a cut_after fault breaks off after that many. `usage` is added to the
            stats when frame `usage_at` (the one carrying it) is written, so a stream cut before it adds
            nothing. `trailer` ([DONE]) is not counted as a frame."""
            cut = self._cut_after
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            if cut is not None:  # chunked framing, so breaking off is a protocol error, not a clean end
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.close_connection = True

            def write(data: bytes) -> None:
                self.wfile.write(data if cut is None else f"{len(data):x}\r\n".encode() + data + b"\r\n")

            for i, data in enumerate(frames):
                if cut is not None and i >= cut:
                    self.wfile.write(b"ffff\r\n" + data[:10])  # a chunk promised, never delivered
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return
                if usage is not None and i == usage_at:  # counted before the client can see it
                    server.stats.add_usage(*usage)
                write(data)
            if trailer is not None:
                write(trailer)
            if cut is not None:
                self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        # --- Chat Completions ---

        def _chat(self, path: str, body: dict[str, Any]) -> None:
            _, reply = server.reply_for("chat", body)
            rid = server.next_id()
            tool_calls = payloads.chat_tool_calls(rid, reply)
            p_tokens, c_tokens = prompt_tokens(body), payloads.output_tokens(reply)
            usage = payloads.chat_usage(p_tokens, c_tokens)
            common = {"id": f"chatcmpl-mock{rid}", "created": int(time.time()), "model": server.script.model, "system_fingerprint": "fp_llmtrace_mock"}
            server.stats.record(path, 200, body)
            if body.get("stream"):
                include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
                frames = payloads.chat_chunks(common, reply, tool_calls, usage if include_usage else None)
                return self._stream(frames, trailer=b"data: [DONE]\n\n", usage_at=len(frames) - 1,
                                    usage=(p_tokens, c_tokens) if include_usage else None)
            server.stats.add_usage(p_tokens, c_tokens)
            self._send_json(200, payloads.chat_completion(common, reply, tool_calls, usage))

        # --- Responses API ---

        def _responses(self, path: str, body: dict[str, Any]) -> None:
            _, reply = server.reply_for("responses", body)
            rid = server.next_id()
            in_tokens, out_tokens = payloads.responses_input_tokens(body), payloads.output_tokens(reply)
            incomplete = reply.finish == "length"
            final = payloads.response_object(
                rid, int(time.time()), server.script.model, body, status="incomplete" if incomplete else "completed",
                output=payloads.responses_output(rid, reply), usage=payloads.responses_usage(in_tokens, out_tokens), incomplete=incomplete,
            )
            server.stats.record(path, 200, body)
            if body.get("stream"):
                frames = payloads.response_events(final)
                return self._stream(frames, usage_at=len(frames) - 1, usage=(in_tokens, out_tokens))
            server.stats.add_usage(in_tokens, out_tokens)
            self._send_json(200, final)

        # --- Anthropic Messages ---

        def _messages(self, path: str, body: dict[str, Any]) -> None:
            _, reply = server.reply_for("messages", body)
            rid = server.next_id()
            in_tokens, out_tokens = payloads.messages_input_tokens(body), payloads.output_tokens(reply)
            model = server.script.model if server.script.model_set or server.script.model != DEFAULT_MODEL else str(body.get("model") or server.script.model)
            message = payloads.anthropic_message(rid, model, reply, payloads.anthropic_usage(in_tokens, out_tokens))
            server.stats.record(path, 200, body)
            if body.get("stream"):
                frames = payloads.anthropic_events(message)
                delta_at = next(i for i, f in enumerate(frames) if f.startswith(b"event: message_delta\n"))
                return self._stream(frames, usage_at=delta_at, usage=(in_tokens, out_tokens))
            server.stats.add_usage(in_tokens, out_tokens)
            self._send_json(200, message, {"request-id": f"req_mock{rid}"})

        # --- Ollama and Gemini (mock/providers.py) ---

        def _ollama(self, path: str, body: dict[str, Any]) -> None:
            conv = providers.ollama_conversation(body)
            _, reply = server.reply_for("ollama", body, conv)
            model = server.script.model if server.script.model_set else str(body.get("model") or server.script.model)
            in_tokens, out_tokens = providers.ollama_input_tokens(body), payloads.output_tokens(reply)
            server.stats.record(path, 200, body)
            if body.get("stream", True):
                frames = providers.ollama_lines(model, reply, in_tokens, out_tokens)
                return self._stream(frames, usage_at=len(frames) - 1, usage=(in_tokens, out_tokens),
                                    content_type=providers.NDJSON)
            server.stats.add_usage(in_tokens, out_tokens)
            self._send_json(200, providers.ollama_reply(model, reply, in_tokens, out_tokens))

        def _gemini(self, path: str, body: dict[str, Any]) -> None:
            asked = providers.gemini_model(path)
            conv = providers.gemini_conversation(asked, body)
            _, reply = server.reply_for("gemini:" + asked, body, conv)
            model = server.script.model if server.script.model_set else asked
            rid = server.next_id()
            in_tokens, out_tokens = providers.gemini_input_tokens(body), payloads.output_tokens(reply)
            server.stats.record(path, 200, body)
            if path.endswith(":streamGenerateContent"):
                frames = providers.gemini_events(model, rid, reply, in_tokens, out_tokens)
                return self._stream(frames, usage_at=len(frames) - 1, usage=(in_tokens, out_tokens))
            server.stats.add_usage(in_tokens, out_tokens)
            self._send_json(200, providers.gemini_reply(model, rid, reply, in_tokens, out_tokens))

        # --- Embeddings ---

        def _embeddings(self, path: str, body: dict[str, Any]) -> None:
            inputs = body.get("input")
            if isinstance(inputs, str) or (isinstance(inputs, list) and inputs and isinstance(inputs[0], int)):
                inputs = [inputs]
            inputs = inputs or []
            dim = int(body.get("dimensions") or server.script.embedding_dim)
            data = []
            tokens = 0
            for i, item in enumerate(inputs):
                if isinstance(item, list):  # token ids (what OpenAIEmbeddings sends after tiktoken): one token each
                    text = " ".join(str(t) for t in item)
                    tokens += len(item)
                else:
                    text = str(item)
                    tokens += estimate_tokens(text)
                vec: Any = embed(text, dim)
                if body.get("encoding_format") == "base64":
                    vec = base64.b64encode(struct.pack(f"<{dim}f", *vec)).decode()
                data.append({"object": "embedding", "index": i, "embedding": vec})
            server.stats.record(path, 200, body)
            server.stats.add_usage(tokens, 0)
            self._send_json(
                200,
                {"object": "list", "data": data, "model": body.get("model", "text-embedding-3-small"),
                 "usage": {"prompt_tokens": tokens, "total_tokens": tokens}},
            )

    return Handler
