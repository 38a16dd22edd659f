"""The span processor: holds open spans, stamps times and cost, hands finished spans to exporters.

It never knows where spans go. An exporter that fails is reported once on stderr and the user's
program goes on.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, Protocol

from llmtrace.clock import now_us
from llmtrace.core.labels import add_labels
from llmtrace.ids import new_span_id
from llmtrace.model import Span, SpanKind, Status, Trace


_PRICED = (SpanKind.LLM.value, SpanKind.EMBEDDING.value)
_RUNNING, _OK, _ERROR, _INTERRUPTED, _PAUSED = (s.value for s in (Status.RUNNING, Status.OK, Status.ERROR, Status.INTERRUPTED,
                                                                  Status.PAUSED))
# LangGraph's control flow, raised through the callbacks like errors: interrupt() pauses the graph (paused);
# a Command to a parent graph (ParentCommand) goes on elsewhere (ok). Known by name: langgraph is not imported.
_PAUSES, _ROUTES = {"GraphInterrupt", "NodeInterrupt"}, {"ParentCommand", "GraphBubbleUp"}
_pricing: Any = None  # llmtrace.pricing, imported at the first priced span




class Exporter(Protocol):
    def write_span(self, span: Span) -> None: ...


class MemoryExporter:
    """Keeps finished spans in a list: for tests that need no database."""

    def __init__(self) -> None:
        self.spans: list[Span] = []

    def write_span(self, span: Span) -> None:
        self.spans.append(span)


class Splitter(Protocol):
    """`run --split`: gives each top-level span a trace of its own (see split.SplitTraces)."""

    def begin(self, root: Span) -> str: ...

    def end(self, root: Span) -> None: ...


class Recorder:
    def __init__(self, trace: Trace, exporters: list[Exporter], redactor: Any = None, splitter: Splitter | None = None):
        self.trace = trace
        self.exporters = exporters
        self.redactor = redactor
        self.splitter = splitter
        self._open: dict[str, Span] = {}
        self.inherited: dict[str, str] = {}  # a fork child's: spans open in its parent when it forked → their trace
        self._lock = threading.RLock()  # re-entered when a signal handler finishes the run
        self._warned = False

    def start_span(self, *, kind: str, name: str, parent_id: str | None, span_id: str | None = None, inputs: Any = None,
                   tags: list[str] | None = None, metadata: dict[str, Any] | None = None,
                   model_requested: str | None = None, provider: str | None = None) -> Span:
        span = Span(id=span_id or new_span_id(), trace_id=self.trace.id, parent_id=parent_id, kind=kind, name=name,
                    start_us=now_us(), inputs=inputs, tags=tags or [], metadata=metadata or {},
                    model_requested=model_requested, provider=provider)
        if self.splitter is None:
            if parent_id is None and (span.tags or span.metadata):  # the app's labels: tags of the trace,
                add_labels(self.trace.tags, span)  # written when it is finished (StoreWriter.finish_traces)
        else:
            if parent_id is None:  # a top-level invocation: a trace of its own
                span.trace_id = self.splitter.begin(span)
            else:  # its parent's; a parent already ended leaves it in the run's record, moved when the run ends
                parent = self._open.get(parent_id)
                if parent is not None:
                    span.trace_id = parent.trace_id
                elif parent_id in self.inherited:
                    span.trace_id = self.inherited[parent_id]
        with self._lock:
            self._open[span.id] = span
        return span

    def get_open(self, span_id: str) -> Span | None:
        return self._open.get(span_id)

    def end_span(self, span: Span, *, error: BaseException | None = None, status: str | None = None) -> None:
        with self._lock:
            if self._open.pop(span.id, None) is None:
                return  # already ended (or never ours)
        span.end_us = now_us()
        kinds = {c.__name__ for c in type(error).__mro__} if error is not None else ()
        if error is not None and not kinds.isdisjoint(_PAUSES | _ROUTES):
            paused = not kinds.isdisjoint(_PAUSES)
            span.status = status or (_PAUSED if paused else _OK)
            if paused:
                span.error_type, span.error_message = type(error).__name__, _interrupt_text(error)
                if self.splitter is not None and hasattr(self.splitter, "paused"):
                    self.splitter.paused(span.trace_id)
        elif error is not None:
            interrupted = isinstance(error, KeyboardInterrupt)
            span.status = status or (_INTERRUPTED if interrupted else _ERROR)
            span.error_type = type(error).__name__
            span.error_message = str(error)[:4000]
            # Not for a GeneratorExit: it is raised inside finalisers, where formatting a traceback can
            # re-enter whatever the interrupted code was doing (Python 3.11's parser, for one).
            if not interrupted and error.__traceback__ is not None and not isinstance(error, GeneratorExit):
                span.metadata["traceback"] = stack_text(error)
        else:
            span.status = status or _OK
        if span.kind in _PRICED and span.cost is None:
            global _pricing
            pricing = _pricing
            if pricing is None:
                import llmtrace.pricing as pricing

                _pricing = pricing
            price = pricing.cost(
                span.model or span.model_requested, span.provider, span.input_tokens, span.output_tokens, span.cached_tokens
            )
            if span.cache_hit:  # answered from the cache: nothing billed, the price is what it saved
                span.cost, span.cost_saved = 0.0, price
            else:
                span.cost = price
        self._export(span)
        if self.splitter is not None and span.parent_id is None:
            self.splitter.end(span)

    def open_spans(self) -> list[Span]:
        """The spans started and not yet ended, at this moment."""
        with self._lock:
            return list(self._open.values())

    def close_open(self, status: str, message: str) -> int:
        """End every span still open (the run is over): returns how many there were."""
        spans = sorted(self.open_spans(), key=lambda s: s.start_us, reverse=True)
        for span in spans:
            span.error_message = message
            self.end_span(span, status=status)
        return len(spans)

    def _export(self, span: Span) -> None:
        for exporter in self.exporters:
            try:
                exporter.write_span(span)
            except Exception as e:  # recording must never break the user's program
                if not self._warned:
                    self._warned = True
                    print(f"llmtrace: warning: could not record a span ({type(e).__name__}: {e}); the run goes on", file=sys.stderr)


def _interrupt_text(error: BaseException) -> str:
    """What a paused graph waits for: the values given to interrupt(), as text."""
    values = [getattr(i, "value", i) for i in (error.args[0] if error.args and isinstance(error.args[0], (list, tuple)) else error.args)]
    import json

    return "; ".join(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str) for v in values)[:4000]


def stack_text(error: BaseException, tb: Any = None, limit: int = 8_000) -> str:
    """The error as python prints it (from `tb`, default its own traceback); the last `limit`
    characters of a deep one. Redacted like every text on its way to disk."""
    import traceback

    try:
        text = "".join(traceback.format_exception(type(error), error, tb or error.__traceback__))
    except Exception:
        return f"{type(error).__name__}: {error}"
    return text if len(text) <= limit else "…" + text[-limit:]
