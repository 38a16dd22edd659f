"""The tracing core: everything a traced process needs, started and stopped as a unit.

A Session owns the recorder (open spans, cost) and where its spans go (the spool and the helper that
copies it into SQLite, live OTLP, one trace per invocation with --split), the capture settings
(response cache, retry policy, budget, replay source), the in-flight publisher that `show --follow`
reads, and the arming of child processes. Every front door starts one and does only what its host
needs around it: `llmtrace run` (run/script.py: argv, signals, exit status), each Python child process
of a traced run (`start_child`, from the start-up hook core/children.py writes, and after a fork).

One session is active in a process at a time. Starting another while one is active nests it: its work
becomes a span of the running trace, and nothing is patched, opened or armed a second time.
"""

from __future__ import annotations

import atexit
import os
import sys
from pathlib import Path
from typing import Any

from llmtrace.core import children
from llmtrace.core.options import RunOptions, wire_settings
from llmtrace.clock import now_us
from llmtrace.core.recorder import Recorder
from llmtrace.model import SpanKind, Status, Trace

_active: "Session | None" = None
_child: "Session | None" = None  # in a child process of a traced run: its session
_forks_watched = False


def active() -> "Session | None":
    """The session tracing this process, if one is."""
    return _active


class _DirectWriter:
    """Exporter used when no spool file can be made: one commit per span."""

    def __init__(self, writer: Any):
        self.write_span = writer.write_span
        self.finish_trace = writer.finish_trace

    def close(self) -> None:
        pass


def _spooling_writer(writer: Any, trace_id: str) -> Any:
    """The run's span exporter: the spool, copied into SQLite by a helper process (a writer thread
    where there can be none), or straight to SQLite when no spool file can be made."""
    from llmtrace.store import helper
    from llmtrace.store.spool import SpoolingWriter, spool_dir

    directory = spool_dir(Path(writer.db_path).parent)
    try:
        if helper.available() and os.environ.get("LLMTRACE_WRITER") != "thread":
            return helper.HelperSpoolingWriter(writer, directory, trace_id)
        return SpoolingWriter(writer, directory, trace_id)
    except OSError as e:  # no room for the spool: write straight to SQLite instead
        print(f"llmtrace: warning: no spool file ({e.strerror}); spans go straight to the store", file=sys.stderr)
        return _DirectWriter(writer)


class Session:
    """A trace being recorded in this process: `start()`, let the code run, `finish(...)`.

    Made with `Session(opts, writer, trace)` for a trace of its own (stored through `writer`, a
    store.writer.StoreWriter), or `Session.for_child(...)` in a child process of a traced run.
    """

    def __init__(self, opts: RunOptions, writer: Any, trace: Trace):
        self.opts, self.writer, self.trace = opts, writer, trace
        self.recorder: Recorder | None = None
        self.settings: Any = None
        self.spool: Any = None
        self.live: Any = None  # the live OTLP exporter
        self.splitter: Any = None
        self.in_flight: Any = None
        self.child_spool: Any = None  # in a child process that cannot write the store: its own spool file, nothing else
        self.child = False  # a child process of a traced run writing the store live: the run is its parent's
        self.outer: Session | None = None  # the session this one is nested in
        # Doors that make many traces in one session (the notebook: one per cell) set these before start():
        self.make_splitter: Any = None  # (trace, writer) -> the recorder's splitter, instead of --split's
        self.record_lazily = False  # the session's own trace row is written by the splitter, if ever needed
        self.direct = False  # spans go straight to SQLite (readable the moment they end), not by the spool
        self._environ: dict[str, str | None] | None = None  # what arming children changed, put back at the end
        self._span: Any = None
        self._scope: Any = None
        self.finished = False

    @classmethod
    def for_child(cls, trace_id: str, spool_dir: Path, settings: Any, redactor: Any) -> "Session":
        """A child process's session: its spans go to a spool file of its own under the parent's trace,
        which the parent loads when its run ends."""
        from llmtrace.store.spool import ChildSpool

        session = cls(RunOptions(script=""), None, Trace(id=trace_id, name="", start_us=0))
        session.child_spool = ChildSpool(spool_dir, trace_id, redactor)
        session.recorder = Recorder(session.trace, [session.child_spool], redactor)
        session.settings = settings
        return session

    @classmethod
    def for_live_child(cls, spec: dict[str, Any], settings: Any, redactor: Any) -> "Session":
        """A child process's session that stores its spans itself, as they end (through a spool of its
        own and its own helper), under the parent's trace; with --split, each top-level invocation it
        makes is a trace of the parent's run."""
        from llmtrace.store.db import open_db
        from llmtrace.store.writer import StoreWriter

        run = spec["run"]
        trace = Trace(id=spec["trace_id"], name=run.get("name") or "", start_us=0, script=run.get("script"),
                      argv=list(run.get("argv") or []), cwd=run.get("cwd"), pid=os.getpid(), version=run.get("version"),
                      run_id=spec["trace_id"] if run.get("split") else None, tags=dict(run.get("tags") or {}))
        writer = StoreWriter(open_db(Path(run["db"])), redactor)
        session = cls(RunOptions(script="", split=bool(run.get("split")), otlp_url=run.get("otlp_url"),
                                 otlp_headers=dict(run.get("otlp_headers") or {})), writer, trace)
        session.settings, session.child = settings, True
        return session

    # -- start ------------------------------------------------------------------------------------
    def start(self) -> "Session":
        global _active
        if _active is not None and not _active.finished and _active is not self:
            return self._nest(_active)
        import llmtrace.capture as capture

        if self.child_spool is None:
            self._open_exporters()
        capture.install(self.recorder, self.settings)
        _active = self
        if self.child_spool is not None or (self.opts.children and children.enabled()):
            _watch_forks()
        if self.opts.children and self.writer is not None and not self.child:  # a child's children are armed already
            from llmtrace.home import home
            from llmtrace.store.spool import spool_dir

            self._environ = children.environ_before_arming()
            children.arm(self.trace.id, spool_dir(Path(self.writer.db_path).parent), home(),
                         children.options_for_children(self.opts),
                         children.run_spec(self.trace, self.writer.db_path, self.opts))
        return self

    def _open_exporters(self) -> None:
        opts, writer, trace = self.opts, self.writer, self.trace
        if trace.pid is None:  # a running trace without a live pid is a dead run's, which any command recovers
            trace.pid = os.getpid()
        if self.settings is None:
            self.settings = wire_settings(opts)  # first: a cache folder it refuses leaves no trace behind
        settings = self.settings
        if not self.record_lazily and not self.child:  # a child's trace is its parent's, written already
            writer.start_trace(trace)
        own = f"{trace.id}.{os.getpid()}" if self.child else trace.id  # a child's spool and in-flight file
        self.spool = _DirectWriter(writer) if self.direct else _spooling_writer(writer, own)
        exporters: list[Any] = [self.spool]
        if opts.otlp_url:
            from llmtrace.export.otlp import LiveOtlpExporter

            self.live = LiveOtlpExporter(opts.otlp_url, trace, headers=opts.otlp_headers, redactor=writer.redactor,
                                         root=not self.child)
            exporters.append(self.live)
        if self.make_splitter is not None:
            self.splitter = self.make_splitter(trace, writer)
            self.splitter.finisher = self.spool
        elif opts.split:
            from llmtrace.core.split import SplitTraces

            self.splitter = SplitTraces(trace, writer)
            self.splitter.finisher = self.spool
            self.splitter.live = self.live
        self.recorder = Recorder(trace, exporters, writer.redactor, self.splitter)
        from llmtrace.core.inflight import InFlightPublisher, live_path

        self.in_flight = InFlightPublisher(self.recorder, live_path(Path(writer.db_path).parent, own),
                                           on_tick=getattr(self.spool, "tick", None)).start()
        if settings.cache is not None and hasattr(self.spool, "answer_handoff"):  # answers go by the spool, as spans do
            settings.cache.handoff = self.spool.answer_handoff(settings.cache)
        if settings.budget is not None:  # it sums what finished calls cost
            exporters.append(settings.budget)

    def _nest(self, outer: "Session") -> "Session":
        from llmtrace.capture import context

        self.outer, self.recorder, self.settings = outer, outer.recorder, outer.settings
        assert self.recorder is not None
        self._span = self.recorder.start_span(kind=SpanKind.CHAIN.value, name=self.trace.name,
                                              parent_id=context.langchain_parent(), tags=[], metadata={})
        self._scope = context.scope.set(self._span.id)
        self.trace = outer.trace
        return self

    # -- finish -----------------------------------------------------------------------------------
    def finish(self, status: str = Status.OK.value, code: int = 0, error: str | None = None,
               stack: str | None = None) -> Trace:
        """Stop recording: spans still open are ended, everything is flushed and closed, and the trace
        is finished with this status. Safe to call more than once (the first call counts)."""
        global _active
        if self.finished:
            return self.trace
        self.finished = True
        if self.outer is not None:
            return self._unnest(status, error)
        import llmtrace.capture as capture

        recorder = self.recorder
        assert recorder is not None
        open_status = Status.INTERRUPTED.value if status == Status.INTERRUPTED.value else Status.ERROR.value
        where = "the child process ended" if self.child_spool is not None else f"the run ended ({status})"
        recorder.close_open(open_status, f"still open when {where}")
        if self.child_spool is not None:  # the process is ending: its spool closed is all there is to do
            self.child_spool.close()
            return self.trace
        self.in_flight.close()
        capture.uninstall()
        if _active is self:
            _active = None
        self.spool.close()
        if self.child:  # the run, and its end, are the parent's
            if self.live is not None:
                self.live.close(self.trace)
            try:
                self.writer.close()
            except Exception:
                pass
            return self.trace
        if self._environ is not None:  # children started from now on are not this trace's
            children.restore_environ(self._environ)
        return self._finish_trace(status, code, error, stack)

    def _unnest(self, status: str, error: str | None) -> Trace:
        from llmtrace.capture import context

        try:
            context.scope.reset(self._scope)
        except ValueError:  # finished in another context than it started in
            pass
        assert self.recorder is not None
        if status == Status.OK.value:
            self.recorder.end_span(self._span)
        else:
            self._span.error_message = error
            self.recorder.end_span(self._span, status=status)
        return self.trace

    def _finish_trace(self, status: str, code: int, error: str | None, stack: str | None) -> Trace:
        writer, trace = self.writer, self.trace
        try:
            from llmtrace.store.spool import load_children, spool_dir

            load_children(writer.db, spool_dir(Path(writer.db_path).parent), trace.id, writer.redactor)
        except Exception as e:
            print(f"llmtrace: warning: could not load child processes' spans ({e}); the next command will", file=sys.stderr)
        if self.splitter is not None:
            try:
                writer.settle_split_run(trace.id)
            except Exception as e:
                print(f"llmtrace: warning: could not settle the run's traces ({e})", file=sys.stderr)
        trace.end_us = now_us()
        trace.status, trace.exit_code, trace.error, trace.traceback = status, code, error, stack
        if self.record_lazily and not getattr(self.splitter, "run_recorded", True):
            return trace  # nothing ever needed the session's own record: it leaves none
        budget = self.settings.budget
        stopped = budget.stopped if budget is not None else None
        if stopped and status in (Status.OK.value, Status.ERROR.value):  # the budget is why it ended
            trace.status, trace.error = Status.OVER_BUDGET.value, error or stopped
        try:
            writer.finish_trace(trace)
        except Exception as e:
            print(f"llmtrace: warning: could not finish the trace record ({e})", file=sys.stderr)
        if self.live is not None:
            from llmtrace.store.queries import get_trace

            try:
                self.live.close(get_trace(writer.db, trace.id))
            except Exception:
                self.live.close(trace)
        return trace


# -- child processes ----------------------------------------------------------------------------------
def start_child(spec: dict[str, Any] | None = None) -> None:
    """In a spawned child of a traced run (by `boot.start_when_used`, when it first imports what
    llmtrace captures): record into the parent's trace, through a spool file of this process's own.
    `spec`: what the parent armed it with (default: read from the environment now)."""
    spec = spec if spec is not None else children.spec_from_env()
    if spec is None:
        return
    from llmtrace.redact import Redactor

    options = dict(spec["options"])
    options["cache_dir"] = Path(options["cache_dir"]) if options.get("cache_dir") else None
    answers = options.pop("answers", None)
    if answers and isinstance(spec.get("test"), dict):  # a child of a test under `pytest --llmtrace`: its file answers
        from llmtrace.capture.answer_files import Switch, TestAnswers

        options["replay"] = Switch(answers["mode"])
        options["replay"].current = TestAnswers.for_child({**answers, **spec["test"], "trace_id": spec["trace_id"]})
    settings = wire_settings(RunOptions(script="", **options), quiet=True)
    if settings.cache is not None:  # a worker can be ended (Pool.terminate) before a writer thread had its turn
        settings.cache.write_behind = False
    _start_child(spec, settings, Redactor.from_environ())


def _start_child(spec: dict[str, Any], settings: Any, redactor: Any, inherited: dict[str, str] | None = None) -> None:
    """`inherited`: in a fork child, the spans open in the parent when it forked (id → trace id)."""
    global _child
    session = None
    if spec.get("run"):
        try:
            session = Session.for_live_child(spec, settings, redactor)
        except Exception:  # the store cannot be opened from here: the spool alone, loaded by the parent
            session = None
    if session is None:
        session = Session.for_child(spec["trace_id"], Path(spec["spool_dir"]), settings, redactor)
    _child = session.start()
    if inherited and _child.recorder is not None:
        _child.recorder.inherited = inherited
    atexit.register(_child_exit, _child)
    mp_util = sys.modules.get("multiprocessing.util")
    if mp_util is not None and inherited is not None:
        # A multiprocessing worker forked from here ends with os._exit (no atexit) but runs its finalizers,
        # whose registry it clears when it starts, after this hook and before its after-fork callbacks.
        mp_util.register_after_fork(_child, lambda session: mp_util.Finalize(None, _child_exit, args=(session,),
                                                                             exitpriority=0))


def _child_exit(session: Session) -> None:
    if session is not _child:
        return  # a fork of this child took over
    try:
        session.finish()
    except Exception:
        pass


def _watch_forks() -> None:
    global _forks_watched
    if not _forks_watched:
        _forks_watched = True
        os.register_at_fork(after_in_child=_after_fork)


def _after_fork() -> None:
    """In a fork child: the parent's spool, writer thread and store connection are not ours; a session
    of its own takes over, with the parent's settings (it goes on counting the parent's requests)."""
    global _active
    from llmtrace.capture import context

    recorder = context.recorder
    if recorder is None:
        return
    _active = None  # the parent's session, which this process must not finish
    inherited = {s.id: s.trace_id for s in recorder.open_spans()}
    settings = context.settings
    settings.occurrences.after_fork()
    spec = children.spec_from_env()
    if spec is None:
        context.set_recorder(None)
        return
    _start_child(spec, settings, recorder.redactor, inherited)
