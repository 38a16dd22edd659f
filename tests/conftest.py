"""Shared fixtures: a private llmtrace home per test, the scripted server, and a CLI runner."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from llmtrace.mock import MockServer, Script

ROOT = Path(__file__).resolve().parent.parent
AGENTS = Path(__file__).resolve().parent / "agents"
SAMPLES = ROOT / "sample_agents"
MATH_SCRIPT = json.loads((SAMPLES / "math_agent.mock.json").read_text())


@pytest.fixture(autouse=True)
def llmtrace_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("LLMTRACE_HOME", str(home))
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE", "LLMTRACE_PRICES", "LLMTRACE_TRACE_ID",
                "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_HEADERS",
                "LLMTRACE_MAX_PAYLOAD_BYTES", "LLMTRACE_BUSY_TIMEOUT_MS", "LLMTRACE_RETRY_BASE_DELAY"):
        monkeypatch.delenv(var, raising=False)
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


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120, cwd: Path | None = None) -> Result:
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
    return {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": key}


def store(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(str(home / "traces.db"))


def last_trace(home: Path):
    from llmtrace.store import open_store
    from llmtrace.store.queries import get_spans, get_trace, resolve_trace_id

    db = open_store(home / "traces.db")
    trace = get_trace(db, resolve_trace_id(db, "last"))
    return trace, get_spans(db, trace.id, payloads=True)


def assert_no_orphans(spans) -> None:
    """Every span's parent is a span of the same trace, or it is a top-level span."""
    ids = {s.id for s in spans}
    for s in spans:
        assert s.parent_id is None or s.parent_id in ids, f"orphan span {s.name} (parent {s.parent_id})"
