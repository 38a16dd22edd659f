"""`run --split`: each top-level invocation of the script is a trace of its own.

A script that answers 500 questions in a loop, or a small server, is then 500 traces, the way a
gateway lets each request carry its own trace id. They share the run's id, tags, script and argv;
the run keeps a record of its own under that id (exit status, the script's traceback, and any span
that belongs to no invocation), which `ls` shows only with `--run` unless it has something to say.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from llmtrace.clock import now_us
from llmtrace.core.labels import add_labels, invocation_tags
from llmtrace.ids import new_trace_id
from llmtrace.model import Span, Status, Trace


def input_head(value: Any, limit: int = 48) -> str:
    """What an invocation was asked, in a few words: a lone text or value stands for itself, a message
    list for its last message, several plain fields as `k=v, …`; '' when there is nothing short to say."""
    for _ in range(4):
        if isinstance(value, dict):
            messages = value.get("messages")
            if isinstance(messages, list) and messages:
                last = messages[-1]
                value = last.get("content") if isinstance(last, dict) else last
                continue
            if len(value) == 1:
                (key, inner), = value.items()
                value = inner if isinstance(inner, (str, dict, list)) else f"{key}={inner}"
                continue
            value = ", ".join(f"{k}={v}" for k, v in value.items() if v is not None and not isinstance(v, (dict, list)))
        elif isinstance(value, list) and value:
            value = value[-1]
            continue
        break
    if value is None or isinstance(value, (dict, list)):
        return ""
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def trace_name(name: str, inputs: Any, resume: bool = False) -> str:
    """A split trace's name: its run_name (or top-level runnable's) and the head of its input (a
    LangGraph resume: `resume` and the value it resumes with)."""
    head = input_head(inputs)
    if resume:
        return f"{name}: resume {head}".rstrip()
    return f"{name}: {head}" if head else name


class SplitTraces:
    """The recorder's splitter: a new trace when a top-level span starts, finished when it ends."""

    def __init__(self, run: Trace, writer: Any):
        self.run = run
        self.writer = writer  # StoreWriter: creates a trace at once (durable before its first span)
        self.finisher: Any = None  # the span exporter that finishes a trace after its spans (the spool)
        self.live: Any = None  # the live OTLP exporter, told when a trace begins and ends
        self._traces: dict[str, Trace] = {}  # open top-level span id → its trace
        self._paused: set[str] = set()  # traces a span of which paused
        self._lock = threading.Lock()
        self._warned = False

    def begin(self, root: Span) -> str:
        run = self.run
        trace = Trace(
            id=new_trace_id(), name=trace_name(root.name, root.inputs, root.metadata.get("llmtrace_resume")), start_us=root.start_us, script=run.script, argv=run.argv,
            cwd=run.cwd, pid=run.pid, version=run.version, run_id=run.id, tags={**invocation_tags(root), **run.tags},
        )
        try:  # by the spool (before the trace's spans, off the program's thread), else straight to SQLite
            getattr(self.finisher, "start_trace", self.writer.start_trace)(trace)
        except Exception as e:  # recording never breaks the script: the span stays in the run's record
            self._warn(e)
            return run.id
        with self._lock:
            self._traces[root.id] = trace
        if self.live is not None:
            self.live.trace_started(trace)
        return trace.id

    def paused(self, trace_id: str) -> None:
        """A span of the trace `trace_id` paused (LangGraph's interrupt()): the trace is paused if it ends well."""
        with self._lock:
            self._paused.add(trace_id)

    def end(self, root: Span) -> None:
        with self._lock:
            trace = self._traces.pop(root.id, None)
            paused = trace is not None and trace.id in self._paused
            self._paused.discard(trace.id if trace is not None else "")
        if trace is None:
            return
        trace.end_us = root.end_us
        trace.status = Status.PAUSED.value if paused and root.status == Status.OK.value else root.status
        if root.status not in (Status.OK.value, Status.PAUSED.value):
            message = root.error_message or ""
            trace.error = (f"{root.error_type}: {message}" if root.error_type else message)[:2000] or None
            trace.traceback = root.metadata.get("traceback")
        try:
            (self.finisher or self.writer).finish_trace(trace)
        except Exception as e:
            self._warn(e)
        if self.live is not None:
            self.live.trace_ended(trace)

    def _warn(self, e: Exception) -> None:
        if not self._warned:
            self._warned = True
            print(f"llmtrace: warning: could not record a trace of this run ({type(e).__name__}: {e}); "
                  "its spans stay in the run's record", file=sys.stderr)


class Group:
    """A trace that top-level spans join while it is current (a notebook cell): written when its first
    span starts (a cell that makes no call leaves no trace), finished by `GroupedTraces.close`."""

    def __init__(self, name: str, tags: dict[str, str] | None = None, run_id: str | None = None):
        self.id = new_trace_id()
        self.name, self.tags, self.run_id = name, dict(tags or {}), run_id
        self.start_us = now_us()
        self.trace: Trace | None = None  # once a span has started in it
        self.spans = 0  # top-level spans started in it
        self.failed = False  # its trace could not be written: its spans go to the session's record


class GroupedTraces(SplitTraces):
    """A splitter for a long-lived session that makes one trace per unit of work its host marks (the
    IPython extension: one per cell). A top-level span joins the current group's trace; one started
    when no group is current goes to the session's own record, written then (so a session whose
    every span was in a group leaves no record of its own)."""

    def __init__(self, run: Trace, writer: Any):
        super().__init__(run, writer)
        self.current: Group | None = None
        self.run_recorded = False

    def begin(self, root: Span) -> str:
        group = self.current
        if group is None or group.failed:
            return self._in_run_record()
        with self._lock:
            group.spans += 1
            add_labels(group.tags, root)  # the trace's tags are this dict: its row gets them when it is finished
            if group.trace is not None:
                return group.trace.id
            run = self.run
            trace = Trace(id=group.id, name=group.name, start_us=group.start_us, script=run.script, argv=run.argv,
                          cwd=run.cwd, pid=run.pid, version=run.version, run_id=group.run_id, tags=group.tags)
            try:
                self.writer.start_trace(trace)
            except Exception as e:
                self._warn(e)
                group.failed = True
                return self._in_run_record()
            group.trace = trace
            return trace.id

    def end(self, root: Span) -> None:
        pass  # a group's trace ends with the group, however many top-level spans it had

    def close(self, group: Group, status: str, error: str | None = None, traceback: str | None = None) -> Trace | None:
        """End `group`: its trace (if a span ever started in it) is finished with this status, after its
        spans. Returns that trace, or None when it made none."""
        with self._lock:
            if self.current is group:
                self.current = None
            trace = group.trace
        if trace is None:
            return None
        trace.end_us, trace.status, trace.error, trace.traceback = now_us(), status, error, traceback
        try:
            (self.finisher or self.writer).finish_trace(trace)
        except Exception as e:
            self._warn(e)
        return trace

    def _in_run_record(self) -> str:
        with self._lock:
            if not self.run_recorded:
                self.run_recorded = True
                try:
                    self.writer.start_trace(self.run)
                except Exception as e:
                    self._warn(e)
        return self.run.id
