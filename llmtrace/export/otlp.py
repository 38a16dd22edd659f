"""OTLP/HTTP (protobuf) export of traces: OpenTelemetry GenAI conventions plus OpenInference.

Needs the `otel` extra (opentelemetry-proto). Each llmtrace trace becomes one OpenTelemetry trace:
every recorded span with its parent link, under a root span for the run (the script: its argv and
first input in, its last output or error out). Trace ids are the llmtrace trace id's 16 bytes;
span ids are 8 bytes of the span's UUID (its random half), so re-sending a trace sends the same ids.

What a backend reads (checked against Phoenix and MLflow, tests/interop):
- every span: `openinference.span.kind` (AGENT, CHAIN, LLM, TOOL, RETRIEVER, EMBEDDING),
  `input.value` / `output.value` with their mime types, an `exception` event on errors;
- LLM spans: gen_ai.* (operation, provider, request and response model, finish reasons, usage,
  input/output messages in the GenAI JSON schema, tool definitions) and llm.* (model, invocation
  parameters, token counts, tools); a cache hit exports no billable usage, only llmtrace.usage.*;
- tools: gen_ai.tool.* and tool.*; retrievers: retrieval.documents.*; embeddings: embedding.*;
- the resource: service.name and `openinference.project.name` (see project_name);
- llmtrace's own under `llmtrace.`: span.kind, cost_usd, cost_saved_usd, cache_hit, attempts,
  streamed, cached_tokens, reasoning_tokens, time_to_first_token_ms, usage.*, tag.<key>, feedback.score.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import queue
import sys
import threading
import uuid
from typing import Any

from llmtrace.model import VERSION
from llmtrace.errors import UserError
from llmtrace.export import genai
from llmtrace.export import collector
from llmtrace.model import Span, Totals, Trace

# Where the CLI finds them: sending is collector.py's.
endpoint, headers, post, export_timeout = collector.endpoint, collector.headers, collector.post, collector.export_timeout

INSTALL_HINT = "OTLP export needs the otel extra: pip install 'llmtrace-local[otel]'"


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


def _io(a: dict[str, Any], key: str, data: Any) -> None:
    """input.value / output.value (OpenInference) with their mime type."""
    pair = genai.value(data)
    if pair is not None:
        a[f"{key}.value"], a[f"{key}.mime_type"] = pair


def _usage(a: dict[str, Any], span: Span) -> None:
    """Token counts. A cache hit cost nothing: its counts stay under llmtrace.* so no backend bills them."""
    total = (span.input_tokens or 0) + (span.output_tokens or 0) if span.input_tokens is not None else None
    a.update({"llmtrace.usage.input_tokens": span.input_tokens, "llmtrace.usage.output_tokens": span.output_tokens})
    if span.cache_hit:
        return
    a.update({
        "gen_ai.usage.input_tokens": span.input_tokens, "gen_ai.usage.output_tokens": span.output_tokens,
        "llm.token_count.prompt": span.input_tokens, "llm.token_count.completion": span.output_tokens,
        "llm.token_count.total": total,
        "llm.token_count.prompt_details.cache_read": span.cached_tokens,
        "llm.token_count.completion_details.reasoning": span.reasoning_tokens,
    })


def _llm(a: dict[str, Any], span: Span) -> str:
    model = span.model or span.model_requested
    req = span.request if isinstance(span.request, dict) else {}
    resp = span.response if isinstance(span.response, dict) else {}
    params = span.metadata.get("params") or {}
    inputs, outputs = genai.input_messages(span), genai.output_messages(span)
    tools = genai.tool_definitions(span)
    response_id = resp.get("id") or (resp.get("chunks") or [{}])[0].get("id") if resp else None
    a.update({
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": span.provider,
        "gen_ai.system": span.provider,
        "gen_ai.request.model": span.model_requested,
        "gen_ai.response.model": span.model,
        "gen_ai.response.id": response_id,
        "gen_ai.response.finish_reasons": [span.finish_reason] if span.finish_reason else None,  # as the provider said it
        "gen_ai.request.temperature": _num(req.get("temperature", params.get("temperature"))),
        "gen_ai.request.max_tokens": req.get("max_tokens") or req.get("max_completion_tokens") or req.get("max_output_tokens"),
        "gen_ai.input.messages": genai.jsons(inputs) if inputs else None,
        "gen_ai.output.messages": genai.jsons(outputs) if outputs else None,
        "gen_ai.tool.definitions": genai.jsons(tools) if tools else None,
        "llm.model_name": model,
        "llm.provider": span.provider,
        "llm.system": span.provider,
        "llm.invocation_parameters": _maybe_json(genai.invocation_parameters(span)),
        "llmtrace.cost_usd": span.cost,
        "llmtrace.cost_saved_usd": span.cost_saved,
        "llmtrace.cache_hit": span.cache_hit,
        "llmtrace.attempts": span.attempts,
        "llmtrace.streamed": span.streamed or None,
        "llmtrace.cached_tokens": span.cached_tokens,
        "llmtrace.reasoning_tokens": span.reasoning_tokens,
        "llmtrace.time_to_first_token_ms": (span.first_token_us - span.start_us) / 1000 if span.first_token_us else None,
    })
    for i, tool in enumerate(tools or []):  # OpenInference keeps OpenAI's shape
        fn = {k: v for k, v in tool.items() if k != "type" and v is not None}
        a[f"llm.tools.{i}.tool.json_schema"] = genai.jsons({"type": "function", "function": fn})
    if span.cost is not None and not span.cache_hit:
        # MLflow prices spans itself unless told: llmtrace's price (genai-prices, LLMTRACE_PRICES) wins.
        a["mlflow.llm.cost"] = genai.jsons({"total_cost": span.cost})
    _usage(a, span)
    _io(a, "input", req or span.inputs)
    out = span.outputs if isinstance(span.outputs, dict) else {}
    plain = isinstance(out.get("content"), str) and not span.tool_calls
    _io(a, "output", out["content"] if plain else (outputs[0] if outputs else span.outputs))
    named = span.model_requested or model  # GenAI span names use the requested model
    return f"chat {named}" if named else "chat"


def _maybe_json(value: Any) -> str | None:
    return genai.jsons(value) if value else None


def span_attributes(span: Span, top_level: bool = False) -> tuple[str, dict[str, Any]]:
    """(span name, attributes): GenAI conventions, OpenInference's kind and input/output, llmtrace's own."""
    kind = genai.span_kind(span, top_level)
    a: dict[str, Any] = {"openinference.span.kind": kind, "llmtrace.span.kind": span.kind}
    if kind == "PROMPT":  # MLflow has no prompt type and would show none at all
        a["mlflow.spanType"] = '"CHAIN"'
    name = span.name
    if span.kind == "llm":
        name = _llm(a, span)
    elif span.kind == "embedding":
        model = span.model or span.model_requested
        name = f"embeddings {model}" if model else "embeddings"
        texts = (span.inputs or {}).get("input") if isinstance(span.inputs, dict) else None
        a.update({"gen_ai.operation.name": "embeddings", "gen_ai.provider.name": span.provider,
                  "gen_ai.system": span.provider, "gen_ai.request.model": span.model_requested,
                  "gen_ai.response.model": span.model, "embedding.model_name": model,
                  "llmtrace.cost_usd": span.cost, "llmtrace.cost_saved_usd": span.cost_saved,
                  "llmtrace.cache_hit": span.cache_hit})
        for i, text in enumerate(texts if isinstance(texts, list) else []):
            if isinstance(text, str):
                a[f"embedding.embeddings.{i}.embedding.text"] = text
        _usage(a, span)
        _io(a, "input", span.inputs)
        _io(a, "output", span.outputs)
    elif span.kind == "tool":
        name = f"execute_tool {span.name}"
        arguments = genai.jsons(span.inputs) if span.inputs is not None else None
        a.update({
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": span.name,
            "gen_ai.tool.type": "function",
            "gen_ai.tool.description": span.metadata.get("description"),
            "gen_ai.tool.call.id": span.metadata.get("tool_call_id"),
            "gen_ai.tool.call.arguments": arguments,
            "gen_ai.tool.call.result": genai.jsons(span.outputs) if span.outputs is not None else None,
            "tool.name": span.name,
            "tool.description": span.metadata.get("description"),
            "tool.parameters": arguments,
        })
        _io(a, "input", span.inputs)
        _io(a, "output", span.outputs)
    elif span.kind == "retriever":
        query = span.inputs.get("query") if isinstance(span.inputs, dict) else span.inputs
        _io(a, "input", query)
        _io(a, "output", span.outputs)
        for i, doc in enumerate(genai.documents(span)):
            for k, v in doc.items():
                a[f"retrieval.documents.{i}.document.{k}"] = v
    else:
        if kind == "AGENT":
            a["gen_ai.operation.name"] = "invoke_agent"
            a["gen_ai.agent.name"] = span.name
        _io(a, "input", span.inputs)
        _io(a, "output", span.outputs)
    if span.tags:
        a["tag.tags"] = list(span.tags)
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


def _exception_event(trace_pb2: Any, common_pb2: Any, at_us: int, type_: str | None, message: str | None,
                     stack: str | None) -> Any:
    """The `exception` span event (type, message, stack trace) that backends show for an error."""
    return trace_pb2.Span.Event(time_unix_nano=at_us * 1000, name="exception", attributes=_attrs(common_pb2, {
        "exception.type": type_ or "Error", "exception.message": message or "", "exception.stacktrace": stack,
        "exception.escaped": True,
    }))


def project_name(trace: Trace, explicit: str | None = None) -> str:
    """--project, else the trace's `project` tag, else LLMTRACE_PROJECT, else the script's name without .py."""
    name = explicit or trace.tags.get("project") or os.environ.get("LLMTRACE_PROJECT")
    return name or trace.name.removesuffix(".py") or "default"


class RunEnds:
    """The run's input and final output, for the root span: the first top-level step's input, the last one's output."""

    def __init__(self) -> None:
        self.first: Span | None = None
        self.last: Span | None = None

    def see(self, span: Span) -> None:
        if span.parent_id is None:
            if self.first is None or span.start_us < self.first.start_us:
                self.first = span
            if self.last is None or (span.end_us or 0) >= (self.last.end_us or 0):
                self.last = span


def _root(trace_pb2: Any, common_pb2: Any, trace: Trace, ends: RunEnds) -> Any:
    attrs: dict[str, Any] = {
        "openinference.span.kind": "AGENT",
        "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": trace.name,
        "llmtrace.span.kind": "run", "llmtrace.trace_id": trace.id, "llmtrace.status": trace.status,
        "process.exit.code": trace.exit_code, "process.command_args": list(trace.argv) or None,
        "llmtrace.script": trace.script,
        # Totals stay under llmtrace.*: the LLM spans carry the billable usage, once.
        "llmtrace.cost_usd": trace.totals.cost, "llmtrace.cost_saved_usd": trace.totals.cost_saved or None,
        "llmtrace.usage.input_tokens": trace.totals.input_tokens,
        "llmtrace.usage.output_tokens": trace.totals.output_tokens,
        "llmtrace.llm_calls": trace.totals.llm_calls, "llmtrace.tool_calls": trace.totals.tool_calls,
        "llmtrace.cache_hits": trace.totals.cache_hits or None, "llmtrace.retries": trace.totals.retries or None,
        **{f"llmtrace.tag.{k}": v for k, v in trace.tags.items()},
    }
    if trace.tags:
        attrs["tag.tags"] = [f"{k}={v}" for k, v in trace.tags.items()]
    if trace.feedback:
        attrs["llmtrace.feedback.score"] = sum(f.score for f in trace.feedback) / len(trace.feedback)
    run_input: dict[str, Any] = {"argv": list(trace.argv)}
    if ends.first is not None and ends.first.inputs is not None:
        run_input["input"] = ends.first.inputs
    _io(attrs, "input", run_input)
    if trace.status == "ok":
        _io(attrs, "output", ends.last.outputs if ends.last is not None else None)
    elif trace.error or trace.status != "running":
        _io(attrs, "output", {"error": trace.error or trace.status, "exit_code": trace.exit_code})
    events = []
    if trace.status in ("error", "interrupted", "killed"):
        type_, _, message = (trace.error or trace.status).partition(": ")
        events.append(_exception_event(trace_pb2, common_pb2, trace.end_us or trace.start_us, type_, message or type_,
                                       trace.traceback))
    return trace_pb2.Span(
        trace_id=trace_id_bytes(trace.id), span_id=_root_id(trace), name=f"invoke_agent {trace.name}",
        kind=trace_pb2.Span.SPAN_KIND_INTERNAL,
        start_time_unix_nano=trace.start_us * 1000, end_time_unix_nano=(trace.end_us or trace.start_us) * 1000,
        attributes=_attrs(common_pb2, attrs), status=_status(trace_pb2, trace.status, trace.error), events=events,
    )


def _span(trace_pb2: Any, common_pb2: Any, tid: bytes, root: bytes, s: Span) -> Any:
    name, attrs = span_attributes(s, top_level=s.parent_id is None)
    events = []
    if s.status in ("error", "interrupted"):
        events.append(_exception_event(trace_pb2, common_pb2, s.end_us or s.start_us, s.error_type or s.status,
                                       s.error_message, s.metadata.get("traceback")))
    return trace_pb2.Span(
        trace_id=tid, span_id=span_id_bytes(s.id),
        parent_span_id=span_id_bytes(s.parent_id) if s.parent_id else root,
        name=name,
        kind=trace_pb2.Span.SPAN_KIND_CLIENT if s.kind in ("llm", "embedding") else trace_pb2.Span.SPAN_KIND_INTERNAL,
        start_time_unix_nano=s.start_us * 1000, end_time_unix_nano=(s.end_us or s.start_us) * 1000,
        attributes=_attrs(common_pb2, attrs), events=events,
        status=_status(trace_pb2, s.status, f"{s.error_type}: {s.error_message}" if s.error_type else s.error_message),
    )


def _count(totals: Any, s: Span) -> None:
    """A split trace's totals for its root span, summed from its spans as they go out."""
    totals.llm_calls += s.kind == "llm"
    totals.tool_calls += s.kind == "tool"
    totals.input_tokens += s.input_tokens or 0
    totals.output_tokens += s.output_tokens or 0
    totals.cost += s.cost or 0.0
    totals.errors += s.status == "error"


def build_request(items: list[tuple[Trace, list[Span], RunEnds | None]], project: str | None = None) -> Any:
    """An ExportTraceServiceRequest: per trace, its spans and (when given the run's ends) the run's root span."""
    trace_service_pb2, common_pb2, resource_pb2, trace_pb2 = _proto()
    req = trace_service_pb2.ExportTraceServiceRequest()
    for trace, spans, ends in items:
        tid = trace_id_bytes(trace.id)
        rs = req.resource_spans.add()
        rs.resource.CopyFrom(resource_pb2.Resource(attributes=_attrs(common_pb2, {
            "service.name": os.environ.get("OTEL_SERVICE_NAME") or trace.name,
            "openinference.project.name": project_name(trace, project),
            "telemetry.sdk.name": "llmtrace", "telemetry.sdk.version": VERSION,
            "process.pid": trace.pid, "process.command_args": list(trace.argv) or None,
        })))
        ss = rs.scope_spans.add()
        ss.scope.name = "llmtrace"
        ss.scope.version = VERSION
        root = _root_id(trace)
        for s in spans:
            ss.spans.append(_span(trace_pb2, common_pb2, tid, root, s))
        if ends is not None:
            ss.spans.append(_root(trace_pb2, common_pb2, trace, ends))
    return req


def ends_of(spans: list[Span]) -> RunEnds:
    ends = RunEnds()
    for s in spans:
        ends.see(s)
    return ends


class StoredForm:
    """Spans and traces as the store keeps them: encoded and redacted by the store's own row encoder
    (credential-named fields blanked, known secrets and key shapes replaced, over-long values capped),
    then read back as the store reads them. What goes out live is then what `export --otlp` would send."""

    def __init__(self, redactor: Any):
        from llmtrace.store.writer import RowEncoder

        self.redactor = redactor
        self.encoder = RowEncoder(redactor)

    def span(self, span: Span) -> Span:
        import json

        from llmtrace.store.queries import _span_from_row

        values, payload = self.encoder.rows(span)
        out = _span_from_row(tuple(values))
        if payload is not None:
            out.request = None if payload[1] is None else json.loads(payload[1])
            out.response = None if payload[2] is None else json.loads(payload[2])
        return out

    def trace(self, trace: Trace) -> Trace:
        import json

        text = self.redactor.text
        out = copy.copy(trace)
        out.name = text(trace.name)
        out.tags = {k: text(v) for k, v in trace.tags.items()}
        out.error = None if trace.error is None else text(trace.error)
        out.traceback = None if trace.traceback is None else text(trace.traceback)
        argv = self.encoder.encode(list(trace.argv))
        out.argv = json.loads(argv) if argv is not None else []
        return out


class LiveOtlpExporter:
    """Exporter for `run --otlp`: sends finished spans in batches from a thread; never raises into the run.

    Spans go out redacted exactly as the store keeps them (StoredForm), by `redactor`: the run's own (the
    session hands over the store's, which learns the keys passed to SDK clients in code), else one of the
    environment's secrets. A raw span never leaves the process."""

    def __init__(self, url: str, trace: Trace, interval_s: float = 1.0, headers: dict[str, str] | None = None,
                 project: str | None = None, redactor: Any = None, root: bool = True):
        _proto()
        # `run --split`: spans go out under their own trace, each trace's root when it ends (`trace_ended`).
        # A child process's exporter sends no root for the run: its parent does (`root`).
        self.root = root
        self._traces: dict[str, Trace] = {}
        self._trace_ends: dict[str, RunEnds] = {}
        self._trace_totals: dict[str, Any] = {}
        self.url, self.trace, self.interval = url, trace, interval_s
        self.headers, self.project = headers or {}, project
        self._redactor = redactor
        self._env_redactor: Any = None
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._warned = False
        self._ends = RunEnds()
        self.sent = 0
        self._thread = threading.Thread(target=self._run, name="llmtrace-otlp", daemon=True)
        self._thread.start()

    def write_span(self, span: Span) -> None:
        self._queue.put(span)

    def trace_started(self, trace: Trace) -> None:
        """A trace of a split run began: its spans go out under it."""
        self._traces[trace.id] = trace

    def trace_ended(self, trace: Trace) -> None:
        """A trace of a split run ended (after its spans were handed over): its root span goes out."""
        self._queue.put(("ended", trace))

    def _stored_form(self) -> StoredForm:
        redactor = self._redactor
        if redactor is None:
            if self._env_redactor is None:
                from llmtrace.redact import Redactor

                self._env_redactor = Redactor.from_environ()
            redactor = self._env_redactor
        return StoredForm(redactor)

    def _send(self, spans: list[Span], with_root: bool, ended: list[Trace] | None = None) -> None:
        try:
            form = self._stored_form()
            groups: dict[str, list[Span]] = {}
            for s in spans:
                groups.setdefault(s.trace_id, []).append(form.span(s))
            items: list[tuple[Trace, list[Span], RunEnds | None]] = []
            own = groups.pop(self.trace.id, [])
            for s in own:
                self._ends.see(s)
            for tid, group in groups.items():
                known = self._traces.get(tid)
                if known is None:  # a trace another process of the run began (a fork's parent): its root is theirs
                    items.append((form.trace(dataclasses.replace(self.trace, id=tid)), group, None))
                    continue
                ends, totals = self._trace_ends.setdefault(tid, RunEnds()), self._trace_totals.setdefault(tid, Totals())
                for s in group:
                    ends.see(s)
                    _count(totals, s)
                items.append((form.trace(known), group, None))
            roots = with_root and self.root
            if own or roots:  # the run's name, argv and tags go out with every batch
                items.append((form.trace(self.trace), own, self._ends if roots else None))
            for trace in ended or []:
                self._traces.pop(trace.id, None)
                trace.totals = self._trace_totals.pop(trace.id, None) or trace.totals
                items.append((form.trace(trace), [], self._trace_ends.pop(trace.id, None) or RunEnds()))
            if not items:
                return
            request = build_request(items, self.project)
            post(self.url, request, extra_headers=self.headers)
            self.sent += len(spans) + roots + len(ended or [])
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
            ended = [b[1] for b in batch if isinstance(b, tuple)]
            batch = [b for b in batch if not isinstance(b, tuple)]
            if batch or done or ended:
                self._send(batch, with_root=done, ended=ended)

    def close(self, trace: Trace) -> None:
        """Flush what is queued and send the run's root span (call once the trace is finished)."""
        self.trace = trace
        self._queue.put(None)
        self._thread.join(timeout=15)
