"""Shared fixtures: a private llmtrace home per test, the scripted server, a CLI runner, agent runs
shared by several tests, and a way to wait for (and hold) requests at the server instead of sleeping.

No test here depends on how fast the machine is: waits are for events (a line printed, a request
arrived), and every timeout is a generous guard against a hang, never what decides a verdict.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import sqlite3
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from collector import Collector

from llmtrace.mock import MockServer, Script

ROOT = Path(__file__).resolve().parent.parent
# A user's project of agent tests, run by tests/test_pytest_plugin.py in a pytest of its own (fixture data here).
collect_ignore = ["pytest_project"]
AGENTS = Path(__file__).resolve().parent / "agents"
SAMPLES = ROOT / "sample_agents"
MATH_SCRIPT = json.loads((SAMPLES / "math_agent.mock.json").read_text())
HANG = 300  # seconds: only a hang takes this long, on any machine however busy
SCRUBBED = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE", "LLMTRACE_PRICES", "LLMTRACE_TRACE_ID",
            "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_HEADERS",
            "LLMTRACE_MAX_PAYLOAD_BYTES", "LLMTRACE_BUSY_TIMEOUT_MS", "LLMTRACE_RETRY_BASE_DELAY", "LLMTRACE_CLOCK_OFFSET_S",
            "LLMTRACE_USAGE_HOSTS")


def _scrub(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    monkeypatch.setenv("LLMTRACE_HOME", str(home))
    monkeypatch.setenv("LLMTRACE_PRICE_UNITS", str(home / "price-units.json"))  # not the user's cache folder
    for var in SCRUBBED:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(autouse=True)
def llmtrace_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    _scrub(monkeypatch, home)
    return home


@pytest.fixture
def mock_server():
    """Factory: mock_server(script_dict) → a started MockServer, stopped after the test."""
    servers: list[MockServer] = []

    def start(script: dict[str, Any] | None = None) -> MockServer:
        server = MockServer(Script.from_dict(script or {})).start()
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop()


@pytest.fixture
def otlp_collector():
    """An OTLP/HTTP collector on 127.0.0.1 (tests/collector.py), closed after the test."""
    c = Collector()
    yield c
    c.close()


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = HANG, cwd: Path | None = None) -> Result:
    full_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1", "COLUMNS": "120"}
    p = subprocess.run(
        [sys.executable, "-m", "llmtrace", *args], capture_output=True, text=True, env=full_env,
        timeout=timeout, cwd=str(cwd or ROOT),
    )
    return Result(p.returncode, p.stdout, p.stderr)


def default_sigint() -> None:
    """preexec_fn: a shell starting a job in the background sets SIGINT to ignored, and Python then
    leaves it ignored (as `python script.py` would); Ctrl-C tests need it back."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def server_env(server: MockServer, key: str = "sk-test-not-a-real-key-0000") -> dict[str, str]:
    # The mock server accepts stream_options.include_usage, as --mock's does: streamed calls report usage.
    from urllib.parse import urlsplit

    return {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": key,
            "LLMTRACE_USAGE_HOSTS": urlsplit(server.base_url).netloc}


def store(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(str(home / "traces.db"))


def last_trace(home: Path, ref: str = "last"):
    from llmtrace.store import open_store
    from llmtrace.store.queries import get_spans, get_trace, resolve_trace_id

    db = open_store(home / "traces.db")
    try:
        trace = get_trace(db, resolve_trace_id(db, ref))
        return trace, get_spans(db, trace.id, payloads=True)
    finally:
        db.close()


def assert_no_orphans(spans) -> None:
    """Every span's parent is a span of the same trace, or it is a top-level span."""
    ids = {s.id for s in spans}
    for s in spans:
        assert s.parent_id is None or s.parent_id in ids, f"orphan span {s.name} (parent {s.parent_id})"


# --- requests seen at the scripted server: wait for them, hold them ---------------------------------


class Arrivals:
    """Counts requests as they reach a scripted server (before its latency, faults or reply), and
    holds chosen ones there until the test opens their gate. A test waits for "request n has
    arrived" instead of sleeping and hoping the script got that far."""

    def __init__(self, server: MockServer):
        self.count = 0
        self._cond = threading.Condition()
        self._gates: list[tuple[int, int | None, threading.Event]] = []
        handler = server.httpd.RequestHandlerClass  # made for this server alone
        answer = handler.do_POST
        arrivals = self

        def do_POST(request: Any) -> None:
            with arrivals._cond:
                n = arrivals.count
                arrivals.count += 1
                arrivals._cond.notify_all()
            for first, last, gate in arrivals._gates:
                if first <= n and (last is None or n <= last):
                    gate.wait(HANG)
            answer(request)

        handler.do_POST = do_POST

    def hold(self, first: int, last: int | None = -1) -> threading.Event:
        """Requests first..last (0-based; last=None: every one from first on) wait at the server until
        the returned event is set. By default only request `first` is held."""
        gate = threading.Event()
        self._gates.append((first, first if last == -1 else last, gate))
        return gate

    def wait_for(self, n: int, timeout: float = HANG) -> bool:
        """True once n requests have arrived; False if `timeout` passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: self.count >= n, timeout)

    def open_all(self) -> None:
        for _, _, gate in self._gates:
            gate.set()


@pytest.fixture
def arrivals():
    """Factory: arrivals(server) → an Arrivals for that server; every gate is opened after the test."""
    made: list[Arrivals] = []

    def watch(server: MockServer) -> Arrivals:
        made.append(Arrivals(server))
        return made[-1]

    yield watch
    for a in made:
        a.open_all()


# --- agent runs that several tests read -------------------------------------------------------------
#
# Starting a LangChain script costs ~2.5 s (imports), so a run that several tests can read is made
# once per `pytest` session: the first worker that needs them makes them all (side by side, each
# against its own scripted server and in its own home), the other worker waits on a file lock and
# reads the same snapshots. A test that changes the store works on a copy (`use_home`).


@dataclass
class AgentRun:
    result: Result
    stats: dict[str, Any]  # the scripted server's stats for this run alone (MockServer.stats.as_dict())
    home: Path  # a snapshot of LLMTRACE_HOME right after the run: read-only, copy it with use_home
    trace: Any  # the run's trace and spans, as last_trace() reads them
    spans: list


@dataclass
class ColdWarm:
    cold: AgentRun  # first run: every call reaches the server and is recorded in the response cache
    warm: AgentRun  # the same script again, same server and home: answered from the cache


def use_home(run: AgentRun, home: Path) -> Path:
    """Make `home` (a test's LLMTRACE_HOME) a copy of the store and cache as they were after `run`."""
    shutil.copytree(run.home, home)
    return home


CACHE_KEY = "sk-proj-CACHEKEYshouldNEVERbeSTORED0123456789"  # the API key the shared math runs send

# name → (script, reply script, llmtrace run options, API key). The two math agents send the same
# requests (only `stream` differs, which the cache key ignores), so each has a home and cache of its own.
SHARED_RUNS: dict[str, tuple[Path, dict[str, Any], tuple[str, ...], str]] = {
    "math_agent.py": (SAMPLES / "math_agent.py", MATH_SCRIPT, ("--tag", "team=core"), CACHE_KEY),
    "math_agent_graph.py": (SAMPLES / "math_agent_graph.py", MATH_SCRIPT, (), CACHE_KEY),
    "lcel_chain.py": (AGENTS / "lcel_chain.py", {}, (), "sk-test-not-a-real-key-0000"),
    "bare_openai.py": (AGENTS / "bare_openai.py", {}, (), "sk-test-not-a-real-key-0000"),
}


def _make_shared_runs(root: Path) -> dict[str, Any]:
    """Run every SHARED_RUNS script cold, all at once, then warm, all at once; snapshot each home."""
    servers = {name: MockServer(Script.from_dict(mock)).start() for name, (_, mock, _, _) in SHARED_RUNS.items()}
    out: dict[str, Any] = {name: {} for name in SHARED_RUNS}
    clean = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    try:
        for label in ("cold", "warm"):
            procs = {}
            for name, (script, _, options, key) in SHARED_RUNS.items():
                servers[name].stats.reset()
                env = {**clean, **server_env(servers[name], key=key), "LLMTRACE_HOME": str(root / name / "home"),
                       "PYTHONUNBUFFERED": "1", "COLUMNS": "120"}
                procs[name] = subprocess.Popen([sys.executable, "-m", "llmtrace", "run", *options, str(script)], env=env,
                                               cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for name, proc in procs.items():
                stdout, stderr = proc.communicate(timeout=HANG)
                snapshot = root / name / label
                shutil.copytree(root / name / "home", snapshot)
                out[name][label] = {"code": proc.returncode, "stdout": stdout, "stderr": stderr,
                                    "stats": servers[name].stats.as_dict(), "home": str(snapshot)}
    finally:
        for server in servers.values():
            server.stop()
    return out


@pytest.fixture(scope="session")
def shared_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ColdWarm]:
    """SHARED_RUNS, each run cold then warm: {"math_agent.py": ColdWarm, ...}."""
    import fcntl

    # Under xdist the workers' temporary folders share a parent that belongs to this session alone.
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    root = tmp_path_factory.getbasetemp().parent if worker else tmp_path_factory.getbasetemp()
    root = root / "shared-runs"
    root.mkdir(exist_ok=True)
    done = root / "runs.json"
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other worker makes them, or has made them
        if not done.exists():
            data = _make_shared_runs(root)
            done.write_text(json.dumps(data))
    data = json.loads(done.read_text())
    mine = tmp_path_factory.mktemp("shared-read")
    runs: dict[str, ColdWarm] = {}
    for name, pair in data.items():
        made = []
        for label in ("cold", "warm"):
            d = pair[label]
            copy = mine / name / label  # read a copy: opening a store may write beside it
            shutil.copytree(d["home"], copy)
            trace, spans = last_trace(copy)
            made.append(AgentRun(Result(d["code"], d["stdout"], d["stderr"]), d["stats"], Path(d["home"]), trace, spans))
        runs[name] = ColdWarm(*made)
    return runs


@pytest.fixture
def math_runs(shared_runs) -> dict[str, ColdWarm]:
    """The reference math agents, classic (streams its calls; run with --tag team=core) and LangGraph
    (plain calls), each run cold then warm against one scripted server, sending CACHE_KEY."""
    return {name: shared_runs[name] for name in ("math_agent.py", "math_agent_graph.py")}


@pytest.fixture
def lcel_runs(shared_runs) -> ColdWarm:
    """tests/agents/lcel_chain.py cold then warm (default reply script)."""
    return shared_runs["lcel_chain.py"]


@pytest.fixture
def bare_runs(shared_runs) -> ColdWarm:
    """tests/agents/bare_openai.py cold then warm (default reply script)."""
    return shared_runs["bare_openai.py"]


# --- a terminal for the live views (show --follow, ls --watch) ---------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Pty:
    """A command on a pseudo-terminal of a given size; its screen output, escape codes removed, read on a thread."""

    def __init__(self, args: list[str], env: dict[str, str], rows: int = 40, cols: int = 120):
        import fcntl
        import struct
        import termios

        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=str(ROOT), close_fds=True)
        os.close(slave)
        self.master, self.text, self._cond = master, "", threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                ready, _, _ = select.select([self.master], [], [], 1.0)
                if not ready:
                    if self.proc.poll() is not None:
                        break
                    continue
                data = os.read(self.master, 65536)
            except OSError:
                break
            if not data:
                break
            with self._cond:
                self.text += _ANSI.sub("", data.decode("utf-8", "replace")).replace("\r", "")
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, needle: str) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: needle in self.text, HANG)


def in_ci() -> bool:
    """CI=true (as CI services and .ci/run set it): everything the suite needs is installed there."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def skip_unless_ci(why: str, *, module: bool = False) -> None:
    """Skip a test whose tool or package is missing here; on CI fail instead, so that a missing
    dependency shows as a failure and not as a quiet skip (.ci/run installs what the suite needs)."""
    if in_ci():
        pytest.fail(f"{why}: needed in CI (.ci/run installs it)", pytrace=False)
    pytest.skip(why, allow_module_level=module)


def need_browser(who: str) -> None:
    """Skip when no headless browser can start here (bench/browser.py says why); on CI (CI=true) fail:
    `who` names what needs it ("the view tests need")."""
    from bench import browser

    why = browser.missing()
    if why:
        if browser.in_ci():
            pytest.fail(f"{who} a browser in CI: {why}")
        pytest.skip(why)
