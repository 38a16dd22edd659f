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

from llmtrace.ids import new_trace_id
from llmtrace.model import Span, Status, Trace


class SplitTraces:
    """The recorder's splitter: a new trace when a top-level span starts, finished when it ends."""

    def __init__(self, run: Trace, writer: Any):
        self.run = run
        self.writer = writer  # StoreWriter: creates a trace at once (durable before its first span)
        self.finisher: Any = None  # the span exporter that finishes a trace after its spans (the spool)
        self._traces: dict[str, Trace] = {}  # open top-level span id → its trace
        self._lock = threading.Lock()
        self._warned = False

    def begin(self, root: Span) -> str:
        run = self.run
        trace = Trace(
            id=new_trace_id(), name=root.name, start_us=root.start_us, script=run.script, argv=run.argv,
            cwd=run.cwd, pid=run.pid, version=run.version, run_id=run.id, tags=dict(run.tags),
        )
        try:
            self.writer.start_trace(trace)
        except Exception as e:  # recording never breaks the script: the span stays in the run's record
            self._warn(e)
            return run.id
        with self._lock:
            self._traces[root.id] = trace
        return trace.id

    def end(self, root: Span) -> None:
        with self._lock:
            trace = self._traces.pop(root.id, None)
        if trace is None:
            return
        trace.end_us = root.end_us
        trace.status = root.status
        if root.status != Status.OK.value:
            message = root.error_message or ""
            trace.error = (f"{root.error_type}: {message}" if root.error_type else message)[:2000] or None
            trace.traceback = root.metadata.get("traceback")
        try:
            (self.finisher or self.writer).finish_trace(trace)
        except Exception as e:
            self._warn(e)

    def _warn(self, e: Exception) -> None:
        if not self._warned:
            self._warned = True
            print(f"llmtrace: warning: could not record a trace of this run ({type(e).__name__}: {e}); "
                  "its spans stay in the run's record", file=sys.stderr)
