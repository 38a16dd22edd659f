"""OTLP/HTTP (protobuf) export of traces, following the OpenTelemetry GenAI semantic conventions.

Needs the `otel` extra (opentelemetry-proto). Each llmtrace trace becomes one OpenTelemetry trace:
a root span for the run (the script), then every recorded span with its parent link. Trace ids are
the llmtrace trace id's 16 bytes; span ids are 8 bytes of the span's UUID (its random half).

Attributes: gen_ai.operation.name (chat / execute_tool / invoke_agent), gen_ai.provider.name and
gen_ai.system, gen_ai.request.model, gen_ai.response.model, gen_ai.response.id,
gen_ai.response.finish_reasons, gen_ai.usage.input_tokens / output_tokens, gen_ai.request.temperature
/ max_tokens, gen_ai.input.messages / gen_ai.output.messages (JSON), gen_ai.tool.name,
gen_ai.tool.call.id, gen_ai.tool.call.arguments / result, gen_ai.tool.type; and llmtrace's own under
`llmtrace.`: span.kind, cost_usd, cost_saved_usd, cache_hit, attempts, streamed, cached_tokens,
reasoning_tokens, time_to_first_token_ms, tag.<key>, feedback.score.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import urllib.error
import urllib.request
import uuid
from typing import Any

from llmtrace import __version__
from llmtrace.errors import ExitCode, UserError
from llmtrace.model import Span, Trace

INSTALL_HINT = "OTLP export needs the otel extra: pip install 'llmtrace[otel]'"


def _proto() -> Any:
    try:
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
        from opentelemetry.proto.common.v1 import common_pb2
        from opentelemetry.proto.resource.v1 import resource_pb2
        from opentelemetry.proto.trace.v1 import trace_pb2
    except ImportError:
        raise UserError(INSTALL_HINT) from None
    return trace_service_pb2, common_pb2, resource_pb2, trace_pb2


def available() -> bool:
    try:
        _proto()
    except UserError:
        return False
    return True


def endpoint(explicit: str | None) -> str | None:
    """The traces URL: --otlp, else OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces."""
    if explicit:
        url = explicit
    elif os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
    elif os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        url = os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"]
    else:
        return None
    if not url.startswith(("http://", "https://")):
        raise UserError(f"bad OTLP endpoint {url!r}: expected http(s)://host:port")
    path = url.partition("://")[2].partition("/")[2]
    return url if path.strip("/") else url.rstrip("/") + "/v1/traces"


def headers() -> dict[str, str]:
    """OTEL_EXPORTER_OTLP_HEADERS (and the traces-only variable): k=v pairs, comma separated."""
    out = {}
    for var in ("OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"):
        for part in os.environ.get(var, "").split(","):
            k, sep, v = part.partition("=")
            if sep and k.strip():
                out[k.strip()] = urllib.request.unquote(v.strip())
    return out


def trace_id_bytes(trace_id: str) -> bytes:
    try:
        return uuid.UUID(trace_id).bytes
    except ValueError:
        import hashlib

        return hashlib.sha256(trace_id.encode()).digest()[:16]


def span_id_bytes(span_id: str) -> bytes:
    try:
        raw = uuid.UUID(span_id).bytes[8:]
    except ValueError:
        import hashlib

        raw = hashlib.sha256(span_id.encode()).digest()[:8]
    return raw if any(raw) else b"\x00" * 7 + b"\x01"


def _root_id(trace: Trace) -> bytes:
    return span_id_bytes("root:" + trace.id)


def _jsons(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _attrs(common_pb2: Any, items: dict[str, Any]) -> list[Any]:
    out = []
    for key, value in items.items():
        if value is None:
            continue
        av = common_pb2.AnyValue()
        if isinstance(value, bool):
            av.bool_value = value
        elif isinstance(value, int):
            av.int_value = value
        elif isinstance(value, float):
            av.double_value = value
        elif isinstance(value, (list, tuple)):
            av.array_value.values.extend(common_pb2.AnyValue(string_value=str(v)) for v in value)
        else:
            av.string_value = str(value)
        out.append(common_pb2.KeyValue(key=key, value=av))
    return out


def span_attributes(span: Span) -> tuple[str, dict[str, Any]]:
    """(span name, attributes) by the GenAI conventions."""
    a: dict[str, Any] = {"llmtrace.span.kind": span.kind}
    name = span.name
    if span.kind == "llm":
        model = span.model_requested or span.model
        name = f"chat {model}" if model else "chat"
        params = span.metadata.get("params") or {}
        req = span.request if isinstance(span.request, dict) else {}
        resp = span.response if isinstance(span.response, dict) else {}
        a.update({
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": span.provider,
            "gen_ai.system": span.provider,
            "gen_ai.request.model": span.model_requested,
            "gen_ai.response.model": span.model,
            "gen_ai.response.id": resp.get("id") or (resp.get("chunks") or [{}])[0].get("id") if resp else None,
            "gen_ai.response.finish_reasons": [span.finish_reason] if span.finish_reason else None,
            "gen_ai.usage.input_tokens": span.input_tokens,
            "gen_ai.usage.output_tokens": span.output_tokens,
            "gen_ai.request.temperature": _num(req.get("temperature", params.get("temperature"))),
            "gen_ai.request.max_tokens": req.get("max_tokens") or req.get("max_completion_tokens"),
            "gen_ai.input.messages": _jsons(span.inputs.get("messages")) if isinstance(span.inputs, dict) and span.inputs.get("messages") else None,
            "gen_ai.output.messages": _jsons(span.outputs) if span.outputs is not None else None,
            "llmtrace.cost_usd": span.cost,
            "llmtrace.cost_saved_usd": span.cost_saved,
            "llmtrace.cache_hit": span.cache_hit,
            "llmtrace.attempts": span.attempts,
            "llmtrace.streamed": span.streamed or None,
            "llmtrace.cached_tokens": span.cached_tokens,
            "llmtrace.reasoning_tokens": span.reasoning_tokens,
            "llmtrace.time_to_first_token_ms": (span.first_token_us - span.start_us) / 1000 if span.first_token_us else None,
        })
        if span.tool_calls:
            a["llmtrace.tool_calls"] = _jsons(span.tool_calls)
    elif span.kind == "tool":
        name = f"execute_tool {span.name}"
        a.update({
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": span.name,
            "gen_ai.tool.type": "function",
            "gen_ai.tool.call.id": span.metadata.get("tool_call_id"),
            "gen_ai.tool.call.arguments": _jsons(span.inputs) if span.inputs is not None else None,
            "gen_ai.tool.call.result": _jsons(span.outputs) if span.outputs is not None else None,
        })
    else:
        if span.parent_id is None and span.kind == "chain":
            a["gen_ai.operation.name"] = "invoke_agent"
            a["gen_ai.agent.name"] = span.name
        a["llmtrace.input"] = _jsons(span.inputs) if span.inputs is not None else None
        a["llmtrace.output"] = _jsons(span.outputs) if span.outputs is not None else None
    if span.error_type:
        a["error.type"] = span.error_type
    return name, a


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _status(trace_pb2: Any, status: str, message: str | None) -> Any:
    if status == "ok":
        return trace_pb2.Status(code=trace_pb2.Status.STATUS_CODE_OK)
    if status == "running":
        return trace_pb2.Status(code=trace_pb2.Status.STATUS_CODE_UNSET)
    return trace_pb2.Status(code=trace_pb2.Status.STATUS_CODE_ERROR, message=(message or status)[:1000])


def build_request(items: list[tuple[Trace, list[Span], bool]]) -> Any:
    """An ExportTraceServiceRequest: per trace, its spans and (when `with_root`) the run's root span."""
    trace_service_pb2, common_pb2, resource_pb2, trace_pb2 = _proto()
    req = trace_service_pb2.ExportTraceServiceRequest()
    for trace, spans, with_root in items:
        tid = trace_id_bytes(trace.id)
        rs = req.resource_spans.add()
        rs.resource.CopyFrom(resource_pb2.Resource(attributes=_attrs(common_pb2, {
            "service.name": os.environ.get("OTEL_SERVICE_NAME") or trace.name,
            "telemetry.sdk.name": "llmtrace", "telemetry.sdk.version": __version__,
            "process.pid": trace.pid, "process.command_args": list(trace.argv) or None,
        })))
        ss = rs.scope_spans.add()
        ss.scope.name = "llmtrace"
        ss.scope.version = __version__
        root = _root_id(trace)
        if with_root:
            attrs = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": trace.name,
                     "llmtrace.span.kind": "run", "llmtrace.trace_id": trace.id, "llmtrace.status": trace.status,
                     "process.exit.code": trace.exit_code, "llmtrace.script": trace.script,
                     "llmtrace.cost_usd": trace.totals.cost, "llmtrace.cost_saved_usd": trace.totals.cost_saved or None,
                     "gen_ai.usage.input_tokens": trace.totals.input_tokens,
                     "gen_ai.usage.output_tokens": trace.totals.output_tokens,
                     "llmtrace.llm_calls": trace.totals.llm_calls, "llmtrace.tool_calls": trace.totals.tool_calls,
                     "llmtrace.cache_hits": trace.totals.cache_hits or None, "llmtrace.retries": trace.totals.retries or None,
                     **{f"llmtrace.tag.{k}": v for k, v in trace.tags.items()}}
            if trace.feedback:
                attrs["llmtrace.feedback.score"] = sum(f.score for f in trace.feedback) / len(trace.feedback)
            ss.spans.append(trace_pb2.Span(
                trace_id=tid, span_id=root, name=f"invoke_agent {trace.name}", kind=trace_pb2.Span.SPAN_KIND_INTERNAL,
                start_time_unix_nano=trace.start_us * 1000, end_time_unix_nano=(trace.end_us or trace.start_us) * 1000,
                attributes=_attrs(common_pb2, attrs), status=_status(trace_pb2, trace.status, trace.error),
            ))
        for s in spans:
            name, attrs = span_attributes(s)
            ss.spans.append(trace_pb2.Span(
                trace_id=tid, span_id=span_id_bytes(s.id),
                parent_span_id=span_id_bytes(s.parent_id) if s.parent_id else root,
                name=name,
                kind=trace_pb2.Span.SPAN_KIND_CLIENT if s.kind == "llm" else trace_pb2.Span.SPAN_KIND_INTERNAL,
                start_time_unix_nano=s.start_us * 1000, end_time_unix_nano=(s.end_us or s.start_us) * 1000,
                attributes=_attrs(common_pb2, attrs),
                status=_status(trace_pb2, s.status, f"{s.error_type}: {s.error_message}" if s.error_type else s.error_message),
            ))
    return req


def post(url: str, request: Any, timeout: float = 10.0) -> None:
    """Send one export request; raises OSError (or UserError for a refusal) on failure."""
    body = request.SerializeToString()
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/x-protobuf", **headers()})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            resp.read()
    except urllib.error.HTTPError as e:
        raise UserError(f"the OTLP endpoint {url} refused the spans: HTTP {e.code}", ExitCode.EXPORT) from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise UserError(f"cannot reach the OTLP endpoint {url}: {reason}", ExitCode.EXPORT) from None


class LiveOtlpExporter:
    """Exporter for `run --otlp`: sends finished spans in batches from a thread; never raises into the run."""

    def __init__(self, url: str, trace: Trace, interval_s: float = 1.0):
        _proto()
        self.url, self.trace, self.interval = url, trace, interval_s
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._warned = False
        self.sent = 0
        self._thread = threading.Thread(target=self._run, name="llmtrace-otlp", daemon=True)
        self._thread.start()

    def write_span(self, span: Span) -> None:
        self._queue.put(span)

    def _send(self, spans: list[Span], with_root: bool) -> None:
        try:
            post(self.url, build_request([(self.trace, spans, with_root)]), timeout=5.0)
            self.sent += len(spans) + with_root
        except Exception as e:
            if not self._warned:
                self._warned = True
                print(f"llmtrace: warning: could not send spans to {self.url} ({e}); the store keeps them "
                      f"(send later with `llmtrace export --otlp`)", file=sys.stderr)

    def _run(self) -> None:
        done = False
        while not done:
            batch: list[Span] = []
            try:
                item = self._queue.get(timeout=self.interval)
                batch.append(item)
                while len(batch) < 512:
                    batch.append(self._queue.get_nowait())
            except queue.Empty:
                pass
            if any(b is None for b in batch):
                done = True
                batch = [b for b in batch if b is not None]
            if batch or done:
                self._send(batch, with_root=done)

    def close(self, trace: Trace) -> None:
        """Flush what is queued and send the run's root span (call once the trace is finished)."""
        self.trace = trace
        self._queue.put(None)
        self._thread.join(timeout=15)
