"""`llmtrace replay`: a script's LLM and embedding calls answered from one trace's recordings.

Each request the script makes is matched, by endpoint and by its body (as the cache keys it), with
the first recorded call of the trace not yet used that made the same request, so identical requests
get their answers in the recorded order. The answer is rebuilt as the HTTP response the SDK had
received (a stream event by event), so the script parses it as it parsed the live one. The first
request that matches nothing is the divergence: reported once with a short diff against the call
the recording expected next; the call then raises ReplayDiverged at its call site, or, with
`live_after_divergence`, this and every later call goes to the provider.
"""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import dataclass
from typing import Any, Callable

from llmtrace.store.cache import request_key
from llmtrace.errors import ReplayDiverged
from llmtrace.model import Span

_JSON = [["content-type", "application/json"]]


@dataclass
class Answer:
    entry: dict[str, Any]  # the final answer, as a cache entry (status, headers, parts, sse)
    failures: list[dict[str, Any]]  # with --with-failures: the failed attempts before it, as error entries
    usage_asked: bool = False  # the recorded request asked for stream usage: the answer holds its chunk


def _error_entry(status: int | None, message: str, kind: str | None = None) -> dict[str, Any]:
    body = {"error": {"message": message, "type": kind or "replayed_error", "code": None}}
    return {"status": status or 503, "headers": _JSON, "parts": [json.dumps(body).encode()], "sse": False}


def _sse(chunk: Any) -> bytes:
    data = json.dumps(chunk, ensure_ascii=False)
    kind = chunk.get("type") if isinstance(chunk, dict) else None
    return (f"event: {kind}\n" if isinstance(kind, str) else "").encode() + f"data: {data}\n\n".encode()


def entry_of(span: Span) -> dict[str, Any] | str:
    """A recorded call's final answer as a cache entry, or why it cannot be given back."""
    if span.status == "error":
        statuses = [a.get("status") for a in span.metadata.get("attempt_log") or [] if isinstance(a, dict)]
        return _error_entry(statuses[-1] if statuses else None, span.error_message or "", span.error_type)
    resp = span.response
    if not isinstance(resp, dict):
        return "its answer was not recorded"
    if resp.get("llmtrace_truncated"):
        return "its answer was cut to LLMTRACE_MAX_PAYLOAD_BYTES when it was stored"
    if resp.get("stream") and isinstance(resp.get("lines"), list):  # newline-delimited JSON (Ollama)
        return {"status": 200, "headers": [["content-type", "application/x-ndjson"]], "sse": False,
                "parts": [json.dumps(line, ensure_ascii=False).encode() + b"\n" for line in resp["lines"]]}
    if resp.get("stream"):
        chunks = resp.get("chunks", resp.get("events")) or []
        parts = [_sse(c) for c in chunks]
        if any(isinstance(c, dict) and c.get("object") == "chat.completion.chunk" for c in chunks):
            parts.append(b"data: [DONE]\n\n")
        return {"status": 200, "headers": [["content-type", "text/event-stream"]], "parts": parts, "sse": True}
    if isinstance(resp.get("data"), str) and resp["data"].endswith(" vectors]"):
        return "its vectors were not stored (recorded by an older llmtrace)"
    return {"status": 200, "headers": _JSON, "parts": [json.dumps(resp, ensure_ascii=False).encode()], "sse": False}


def _key(body: dict[str, Any]) -> str:
    return request_key(body, "")


def request_diff(expected: dict[str, Any], actual: dict[str, Any], name: str) -> list[str]:
    """A short unified diff of two request bodies, section by section (messages, parameters, tools)."""
    from llmtrace.compare import section_diffs, step

    def sections(body: dict[str, Any]) -> dict[str, list[str]]:
        kind = "embedding" if name.endswith("embeddings") else "llm"
        inputs = {"messages": body.get("messages")} if "messages" in body else body.get("input")
        return step(Span(id="", trace_id="", parent_id=None, kind=kind, name=name, start_us=0, inputs=inputs,
                         request=body, model_requested=body.get("model"))).sections

    out: list[str] = []
    for section, lines in section_diffs(sections(expected), sections(actual)).items():
        out += [f"{section}:", *[f"  {line}" for line in lines]]
    return out or ["(the bodies differ in a field the diff does not show)"]


class ReplaySource:
    def __init__(self, spans: list[Span], *, live_after_divergence: bool = False, with_failures: bool = False,
                 say: Callable[[str], None] | None = None):
        self.calls = sorted((s for s in spans if s.kind in ("llm", "embedding") and isinstance(s.request, dict)),
                            key=lambda s: (s.start_us, s.id))
        self.keys = [(s.kind, _key(s.request)) for s in self.calls]
        self.used = [False] * len(self.calls)
        self.answered = 0
        self.live_after = live_after_divergence
        self.with_failures = with_failures
        self.diverged: str | None = None  # the report, once a request matched nothing
        self._say = say or (lambda text: print(text, file=sys.stderr, flush=True))
        self._lock = threading.Lock()

    def answer(self, kind: str, name: str, body: dict[str, Any]) -> Answer | ReplayDiverged | None:
        """The recorded answer for this request (`kind` llm or embedding, `name` the endpoint's, for the
        report); ReplayDiverged (to raise) at the divergence; None: go live."""
        with self._lock:
            if self.diverged is not None:
                return None if self.live_after else ReplayDiverged(self.diverged.splitlines()[0])
            key = (kind, _key(body))
            i = next((i for i, k in enumerate(self.keys) if not self.used[i] and k == key), None)
            if i is not None:
                entry = entry_of(self.calls[i])
                if isinstance(entry, dict):
                    self.used[i] = True
                    self.answered += 1
                    failures = []
                    if self.with_failures:
                        failures = [_error_entry(a.get("status"), str(a.get("error", "")))
                                    for a in self.calls[i].metadata.get("attempt_log") or [] if isinstance(a, dict)]
                        if self.calls[i].status == "error" and failures:
                            failures.pop()  # the last failed attempt is the final answer itself
                    request = self.calls[i].request if isinstance(self.calls[i].request, dict) else {}
                    options = request.get("stream_options")
                    asked = isinstance(options, dict) and bool(options.get("include_usage"))
                    return Answer(entry, failures, asked)
                why, diff = f"the recorded call cannot be given back: {entry}", []
            else:
                nxt = next((j for j, used in enumerate(self.used) if not used), None)
                if nxt is None:
                    why, diff = f"the recording has no more calls (it holds {len(self.calls)})", []
                else:
                    why = f"the request differs from the recording's call {nxt + 1} of {len(self.calls)}"
                    diff = request_diff(self.calls[nxt].request, body, name)
            model = body.get("model", "")
            self.diverged = "\n".join([f"llmtrace: replay diverged at call {self.answered + 1} ({name} {model}): {why}",
                                       *[f"  {line}" for line in diff]])
            then = "going on live (--live-after-divergence)" if self.live_after else "stopping it there"
            self._say(f"{self.diverged}\nllmtrace: {then}")
            return None if self.live_after else ReplayDiverged(self.diverged.splitlines()[0].removeprefix("llmtrace: "))
