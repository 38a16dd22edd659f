"""`pytest --llmtrace`: the session's work, registered by plugin.py when asked for.

One tracing session (core/session.py) for the whole pytest process, with a splitter that makes one trace
per test (core/split.py `GroupedTraces`, as the notebook makes one per cell): a test is a Group, named
after its node id, tagged with its outcome and sharing the pytest run's id. The session's capture
settings hold a replay source (answers.Switch) that answers each call from the current test's answer
file, or lets it go to the provider and records its answer, as the record mode says. With pytest-xdist
the controller makes the run id and writes the run's own record; each worker traces its tests.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from llmtrace.capture import answer_files as files

_KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")


class TestTrace:
    """What the `llmtrace` fixture gives: the test's trace, as far as it has been recorded."""

    __test__ = False

    def __init__(self, trace_id: str, nodeid: str):
        self.id, self.nodeid = trace_id, nodeid
        self.spans: list[Any] = []  # finished spans, in the order they ended
        self.answers: files.TestAnswers | None = None

    @property
    def calls(self) -> list[Any]:
        return [s for s in self.spans if s.kind in ("llm", "embedding")]

    @property
    def llm_calls(self) -> int:
        return sum(1 for s in self.spans if s.kind == "llm")

    @property
    def tokens(self) -> int:
        return sum((s.input_tokens or 0) + (s.output_tokens or 0) for s in self.calls)

    @property
    def cost(self) -> float:
        """What the test's calls cost at their price (a replayed answer at what it would have cost)."""
        return sum((s.cost_saved if s.cache_hit else s.cost) or 0.0 for s in self.calls)

    @property
    def replayed(self) -> int:
        return sum(1 for s in self.calls if s.cache_hit == "replay")

    @property
    def refused(self) -> int:
        """Calls refused at their call site, unsent: no recorded answer where nothing may be sent."""
        return sum(1 for s in self.calls if s.error_type == "NoRecordedAnswer")

    def stats(self) -> dict[str, Any]:
        return {"calls": len(self.calls), "tokens": self.tokens, "cost": round(self.cost, 8), "replayed": self.replayed,
                "refused": self.refused,
                "written": bool(self.answers and self.answers.written), "trace": self.id}


class _Collector:
    """An exporter of the session's recorder: the current test's finished spans, for its fixture and totals."""

    def __init__(self) -> None:
        self.current: TestTrace | None = None
        self.lock = threading.Lock()

    def write_span(self, span: Any) -> None:
        current = self.current
        if current is not None and span.trace_id == current.id:
            with self.lock:
                current.spans.append(span)


class XdistHooks:
    """Registered where pytest-xdist is installed: the controller hands its run id to every worker."""

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        suite = node.config.pluginmanager.get_plugin("llmtrace-suite")
        if suite is not None:
            node.workerinput["llmtrace_run_id"] = suite.run_id


class Suite:
    def __init__(self, config: Any, mode: str):
        from llmtrace.ids import new_trace_id

        self.config, self.mode = config, mode
        workerinput = getattr(config, "workerinput", None)
        self.worker = workerinput is not None
        self.run_id = (workerinput or {}).get("llmtrace_run_id") or new_trace_id()
        self.active = True
        self.session: Any = None
        self.run_writer: Any = None  # the controller's (or the single process's) writer of the run record
        self.run_trace: Any = None
        self.switch = files.Switch(mode)
        self.collector = _Collector()
        self.tests: dict[str, TestTrace] = {}
        self.results: dict[str, dict[str, Any]] = {}  # node id -> stats, from the reports (workers' included)
        self.outcomes: dict[str, str] = {}
        self._quiet = []  # traces of tests that made no call, not written yet
        self._placeholders: list[str] = []
        if mode not in ("all", "new_episodes"):  # replay needs no key: the clients still construct
            for key in _KEYS:
                if not os.environ.get(key):
                    os.environ[key] = files.NO_KEY
                    self._placeholders.append(key)

    # -- session --------------------------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: Any) -> None:
        from llmtrace.core import session as core

        if core.active() is not None:
            print("llmtrace: warning: this pytest runs under `llmtrace run` already: each test is not a trace of its own "
                  "and answers are not recorded (run `pytest --llmtrace` alone)", file=sys.stderr)
            self.active = False
            return
        controller = self.config.pluginmanager.hasplugin("dsession")
        if not self.worker:
            self._start_run_record()
        if not controller:
            self._start_session()

    def _start_run_record(self) -> None:
        from llmtrace.model import VERSION
        from llmtrace.clock import now_us
        from llmtrace.model import Trace
        from llmtrace.redact import Redactor
        from llmtrace.store import open_store
        from llmtrace.store.writer import StoreWriter

        args = [str(a) for a in self.config.invocation_params.args]
        self.run_trace = Trace(id=self.run_id, name="pytest " + " ".join(args) if args else "pytest", start_us=now_us(),
                               script="pytest", argv=["pytest", *args], cwd=os.getcwd(), pid=os.getpid(),
                               version=VERSION, run_id=self.run_id, tags={"pytest": "run", "record": self.mode})
        self.run_writer = StoreWriter(open_store(), Redactor.from_environ())
        self.run_writer.start_trace(self.run_trace)

    def _start_session(self) -> None:
        from llmtrace.model import VERSION
        from llmtrace.clock import now_us
        from llmtrace.core.options import RunOptions
        from llmtrace.core.session import Session
        from llmtrace.core.split import GroupedTraces
        from llmtrace.ids import new_trace_id
        from llmtrace.model import Trace
        from llmtrace.redact import Redactor
        from llmtrace.store import open_store
        from llmtrace.store.writer import StoreWriter

        name = "pytest " + os.environ.get("PYTEST_XDIST_WORKER", "")
        trace = Trace(id=new_trace_id(), name=name.strip(), start_us=now_us(), script="pytest", argv=list(sys.argv),
                      cwd=os.getcwd(), pid=os.getpid(), version=VERSION, run_id=self.run_id,
                      tags={"pytest": "session"})
        # The answer files are the cache here. Child processes are armed here, once, and told the current
        # test (its trace, its answer file) as each test starts (`_arm_test`).
        opts = RunOptions(script="pytest", name=trace.name, cache=False, children=False, replay=self.switch)
        writer = StoreWriter(open_store(), Redactor.from_environ())
        session = Session(opts, writer, trace)
        session.make_splitter, session.record_lazily, session.direct = GroupedTraces, True, True
        self.session = session.start()
        session.recorder.exporters.append(self.collector)
        self._arm_children(session)

    def _arm_children(self, session: Any) -> None:
        from llmtrace.core import children
        from llmtrace.core import session as core
        from llmtrace.home import home
        from llmtrace.store.spool import spool_dir

        if not children.enabled():
            return
        self.spool_dir = spool_dir(Path(session.writer.db_path).parent)
        self._environ = children.environ_before_arming()
        self._child_options = children.options_for_children(session.opts)
        children.arm(session.trace.id, self.spool_dir, home(), self._child_options)
        if os.environ.get(children.ENV):
            import json

            self.children_armed = True
            core._watch_forks()
            # What children are told is the same for every test but for three strings (`_arm_test`).
            static = {"mode": self.mode, "owner": os.getpid(), "handover": str(self.spool_dir)}
            self._env_rest = json.dumps({"spool_dir": str(self.spool_dir),
                                         "options": {**self._child_options, "answers": static}})[1:]

    def _arm_test(self, trace_id: str, answers: files.TestAnswers) -> None:
        """Children started from now on join this test's trace and answer from its file (read by
        core/session.py `start_child`, and after a fork)."""
        from json import dumps

        from llmtrace.core import children

        os.environ[children.ENV] = (f'{{"trace_id": {dumps(trace_id)}, "test": {{"path": {dumps(str(answers.path))}, '
                                    f'"nodeid": {dumps(answers.nodeid)}}}, {self._env_rest}')

    children_armed = False
    spool_dir: Any = None
    _environ: Any = None
    _child_options: Any = None

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: Any, exitstatus: Any) -> None:
        for key in self._placeholders:
            if os.environ.get(key) == files.NO_KEY:
                del os.environ[key]
        if self._environ is not None:
            from llmtrace.core import children

            children.restore_environ(self._environ)
            self._environ = None
        self._write_quiet()
        if self.session is not None:
            s, self.session = self.session, None
            try:
                s.finish()
            finally:
                s.writer.close()
        if self.run_writer is not None:
            from llmtrace.clock import now_us

            t = self.run_trace
            t.end_us, t.exit_code = now_us(), int(exitstatus)
            t.status = "ok" if int(exitstatus) in (0, 5) else ("interrupted" if int(exitstatus) == 2 else "error")
            try:
                self.run_writer.finish_trace(t)
            finally:
                self.run_writer.close()
                self.run_writer = None

    # -- each test ------------------------------------------------------------------------------------
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: Any, nextitem: Any) -> Any:
        if self.session is None:
            yield
            return
        from llmtrace.core.split import Group

        group = Group(item.nodeid, {"pytest": "test"}, run_id=self.run_id)
        test = self.tests[item.nodeid] = TestTrace(group.id, item.nodeid)
        path = files.answers_path(Path(str(item.path)), item.name)
        folder = path.parent
        test.answers = files.TestAnswers(path, self.mode, item.nodeid, lambda: files.recorded_calls(folder),
                                         handover=self.spool_dir if self.children_armed else None)
        test.answers.trace_id = group.id
        if self.children_armed:
            self._arm_test(group.id, test.answers)
        self.switch.current = test.answers
        self.collector.current = test
        splitter = self.session.splitter
        splitter.current = group
        try:
            yield
        finally:
            self.switch.current = None
            self.collector.current = None
            self._close(group, test)
            self.tests.pop(item.nodeid, None)

    def _close(self, group: Any, test: TestTrace) -> None:
        outcome = self.outcomes.pop(test.nodeid, "passed")
        group.tags["outcome"] = outcome
        status = "error" if outcome in ("failed", "error") else "ok"
        error = getattr(test, "error", None)
        splitter = self.session.splitter
        writer = self.session.writer
        trace = splitter.close(group, status, error)
        if trace is None:  # no span: the test's trace is written with others, many at a time
            from llmtrace.clock import now_us
            from llmtrace.model import Trace

            run = self.session.trace
            trace = Trace(id=group.id, name=group.name, start_us=group.start_us, script=run.script, argv=run.argv,
                          cwd=run.cwd, pid=run.pid, version=run.version, run_id=self.run_id, tags=group.tags)
            trace.end_us, trace.status, trace.error = now_us(), status, error
            if test.spans:  # its child processes' spans only: the totals are summed from them now
                try:
                    writer.start_trace(trace)
                    writer.finish_trace(trace)
                except Exception as e:
                    print(f"llmtrace: warning: could not record test {test.nodeid} ({e})", file=sys.stderr)
                return
            self._quiet.append(trace)
            if len(self._quiet) >= 200:
                self._write_quiet()
        else:  # written at its first span, before the outcome was known
            from llmtrace.store.edit import retag

            try:
                with writer._lock:
                    retag(writer.db, trace.id, {"outcome": outcome}, [])
            except Exception as e:
                print(f"llmtrace: warning: could not tag test {test.nodeid} ({e})", file=sys.stderr)

    _quiet: list[Any]

    def _write_quiet(self) -> None:
        traces, self._quiet = self._quiet, []
        if traces and self.session is not None:
            try:
                self.session.writer.write_ended_traces(traces)
            except Exception as e:
                print(f"llmtrace: warning: could not record {len(traces)} tests without LLM calls ({e})", file=sys.stderr)

    def _children_left(self, test: TestTrace) -> bool:
        """Whether the test's child processes left spools or handover files (one listing of the folder)."""
        if not self.children_armed:
            return False
        try:
            names = os.listdir(self.spool_dir)
        except OSError:
            return False
        handover = f"answers-{test.id}-"
        return any(n.startswith(test.id) or n.startswith(handover) for n in names)

    def _take_children(self, test: TestTrace) -> None:
        """The spans of the test's child processes that have ended: into the store, and the test's totals."""
        if self.session is None or not self._children_left(test):
            return
        if test.answers is not None:
            test.answers.take_handovers()
        from llmtrace.store.queries import get_spans
        from llmtrace.store.spool import load_children

        writer = self.session.writer
        try:
            with writer._lock:
                loaded = load_children(writer.db, self.spool_dir, test.id, writer.redactor)
                if loaded:
                    have = {s.id for s in test.spans}
                    test.spans += [s for s in get_spans(writer.db, test.id) if s.id not in have]
        except Exception as e:
            print(f"llmtrace: warning: could not load the child processes' spans of {test.nodeid} ({e})", file=sys.stderr)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: Any, call: Any) -> Any:
        outcome = yield
        report = outcome.get_result()
        test = self.tests.get(item.nodeid)
        if test is None:
            return
        if call.when == "call" and report.passed:
            if test.answers is not None and self._children_left(test):
                test.answers.take_handovers()  # what the test's child processes refused counts here too

            problem = self._problem(item, test)
            if problem:
                report.outcome, report.longrepr = "failed", problem
        if report.failed:
            self.outcomes[item.nodeid] = "failed" if report.when == "call" else "error"
            test.error = (report.longreprtext or "")[-2000:]
        elif report.skipped and item.nodeid not in self.outcomes:
            self.outcomes[item.nodeid] = "skipped"
        if call.when == "teardown":
            self._take_children(test)
            answers = test.answers
            if answers is not None:
                try:
                    answers.written = answers.finish(self.session.recorder.redactor)
                except OSError as e:
                    print(f"llmtrace: warning: could not write {answers.path}: {e}", file=sys.stderr)
            report.llmtrace = test.stats()

    def _problem(self, item: Any, test: TestTrace) -> str | None:
        answers = test.answers
        if answers is not None and answers.misses:  # the test caught the refusal: it still fails
            return "llmtrace: " + answers.misses[0]
        marker = item.get_closest_marker("llmtrace")
        if marker is None:
            return None
        limits = dict(marker.kwargs)
        over = []
        if limits.get("max_calls") is not None and len(test.calls) > limits["max_calls"]:
            over.append(f"{len(test.calls)} LLM calls > max_calls={limits['max_calls']}")
        if limits.get("max_tokens") is not None and test.tokens > limits["max_tokens"]:
            over.append(f"{test.tokens} tokens > max_tokens={limits['max_tokens']}")
        if limits.get("max_cost") is not None and test.cost > limits["max_cost"]:
            over.append(f"${test.cost:.6f} > max_cost=${limits['max_cost']}")
        return f"llmtrace budget exceeded: {'; '.join(over)}" if over else None

    def handle(self, node: Any) -> TestTrace:
        test = self.tests.get(node.nodeid)
        if test is None:
            pytest.fail("the llmtrace fixture: this test is not traced", pytrace=False)
        return test

    # -- the summary ----------------------------------------------------------------------------------
    def pytest_runtest_logreport(self, report: Any) -> None:
        stats = getattr(report, "llmtrace", None)
        if report.when == "teardown" and isinstance(stats, dict):
            self.results[report.nodeid] = stats

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.worker or not self.active:
            return
        from llmtrace.testkit.summary import lines

        tr = terminalreporter
        tr.section("llmtrace")
        for line in lines(self.results, self.run_id, self.mode, tr.config.getoption("verbose") > 0):
            tr.write_line(line)
