"""`pytest --llmtrace`: a user's project of agent tests (tests/pytest_project: a chain, a batch, a stream,
async, a create_agent agent with tools, a thread, the fixture, a test without LLM calls) run in a real
pytest of its own against the scripted server. Recorded once, then replayed with no key and no request
reaching the server; a test added later fails with the nearest recorded request and a diff, sending
nothing; recording the same answers again changes no byte; no secret reaches a file."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from llmtrace.mock import MockServer, Script

PROJECT = Path(__file__).resolve().parent / "pytest_project"
SCRIPT = json.loads((PROJECT / "agent.mock.json").read_text())
KEY = "sk-test-pytest-plugin-key-93c1f0d7e5"
LLM_TESTS = ["test_agent_with_tools", "test_async", "test_batch", "test_chain", "test_child_processes", "test_fixture",
             "test_stream", "test_thread"]
ANSWERS = Path("tests") / "recorded_answers" / "test_agent"


@dataclass
class Run:
    code: int
    out: str
    requests: int  # requests the scripted server saw during this run


def run_project(project: Path, home: Path, *args: str, key: str | None = KEY, server: MockServer | None = None) -> Run:
    """`python -m pytest ARGS` in the project, against a fresh scripted server (or `server`)."""
    own = server is None
    server = server or MockServer(Script.from_dict(SCRIPT)).start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "OPENAI_", "ANTHROPIC_"))}
        env.update({"OPENAI_BASE_URL": server.base_url, "LLMTRACE_HOME": str(home), "COLUMNS": "150",
                    "PYTHONDONTWRITEBYTECODE": "1"})
        if key is not None:
            env["OPENAI_API_KEY"] = key
        before = server.stats.requests
        p = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=project, env=env,
                           capture_output=True, text=True, timeout=300)
        return Run(p.returncode, p.stdout + p.stderr, server.stats.requests - before)
    finally:
        if own:
            server.stop()


def answer_files(project: Path) -> dict[str, bytes]:
    folder = project / "tests" / "recorded_answers"
    return {str(f.relative_to(folder)): f.read_bytes() for f in sorted(folder.rglob("*.json"))}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Run, Path]:
    """The project after its first `pytest --llmtrace` (record mode once): its files, that run, its home."""
    root = tmp_path_factory.mktemp("recorded")
    project = root / "project"
    shutil.copytree(PROJECT, project)
    home = root / "home"
    return project, run_project(project, home, "--llmtrace"), home


@pytest.fixture
def project(recorded: tuple[Path, Run, Path], tmp_path: Path) -> Path:
    """A copy of the recorded project for one test to change."""
    copy = tmp_path / "project"
    shutil.copytree(recorded[0], copy)
    return copy


def test_first_run_records_a_reviewable_file_per_test(recorded):
    project, run, home = recorded
    assert run.code == 0, run.out
    # 1 chain + 3 batch + 1 stream + 1 async + 4 agent turns + 1 thread + 1 fixture + 2 child processes
    assert run.requests == 14
    files = answer_files(project)
    assert sorted(files) == [f"test_agent/{name}.json" for name in LLM_TESTS]  # none for the test without calls
    for name, blob in files.items():
        doc = json.loads(blob)
        assert doc["test"] == f"tests/test_agent.py::{Path(name).stem}"
        assert blob.decode().startswith('{\n  "llmtrace_answers": 1,\n  "test":')  # pretty, header first
        for call in doc["calls"]:
            assert call["endpoint"] == "openai.chat.completions"
            assert isinstance(call["request"]["messages"], list)  # the request body, readable
    stream = json.loads(files["test_agent/test_stream.json"])["calls"][0]["response"]
    assert len(stream["events"]) > 3 and stream["events"][-1] == {"data": "[DONE]"}  # a stream as its events
    assert stream["events"][1]["data"]["choices"][0]["delta"]["content"]
    agent = json.loads(files["test_agent/test_agent_with_tools.json"])["calls"]
    assert len(agent) == 4 and any(c["response"]["body"]["choices"][0]["message"].get("tool_calls") for c in agent)
    assert len(json.loads(files["test_agent/test_batch.json"])["calls"]) == 3
    for path in (project / ANSWERS).iterdir():
        assert path.stat().st_mode & 0o777 == 0o600
    assert (project / ANSWERS).stat().st_mode & 0o777 == 0o700
    assert "answers recorded for 8 tests" in run.out and "14 live" in run.out


def test_no_secret_in_any_file(recorded):
    project, _, home = recorded
    for name, blob in answer_files(project).items():
        assert KEY.encode() not in blob and b"sk-test" not in blob, name
        assert b"authorization" not in blob.lower(), name


def test_each_test_is_a_trace_of_one_run(recorded):
    project, run, home = recorded
    db = sqlite3.connect(home / "traces.db")
    rows = db.execute("SELECT id, name, status, run_id, llm_calls FROM traces ORDER BY name").fetchall()
    tags = dict(db.execute("SELECT trace_id, value FROM trace_tags WHERE key = 'outcome'").fetchall())
    labels = db.execute("SELECT key, value FROM trace_tags JOIN traces ON traces.id = trace_id "
                        "WHERE name = 'tests/test_agent.py::test_chain' ORDER BY key").fetchall()
    db.close()
    # The test's LangChain metadata and tags are its trace's tags, beside what the plugin sets.
    assert labels == [("outcome", "passed"), ("pytest", "test"), ("smoke", ""), ("user_id", "carol")]
    runs = {r[3] for r in rows}
    assert len(runs) == 1  # one run id for the session
    run_id = runs.pop()
    record = [r for r in rows if r[0] == run_id]
    assert len(record) == 1 and record[0][1].startswith("pytest")  # the run's own record
    tests = {r[1]: r for r in rows if r[0] != run_id}
    assert sorted(tests) == sorted([f"tests/test_agent.py::{n}" for n in LLM_TESTS]
                                   + ["tests/test_agent.py::test_without_llm_calls"])
    assert tests["tests/test_agent.py::test_agent_with_tools"][4] == 4
    assert tests["tests/test_agent.py::test_batch"][4] == 3
    assert tests["tests/test_agent.py::test_child_processes"][4] == 2  # a subprocess's call and a fork's
    assert tests["tests/test_agent.py::test_without_llm_calls"][4] == 0
    assert all(tags[r[0]] == "passed" and r[2] == "ok" for r in tests.values())
    assert f"llmtrace ls --run {run_id[:8]}" in run.out
    ls = subprocess.run([sys.executable, "-m", "llmtrace", "ls", "--run", run_id[:8], "--json"], capture_output=True,
                        text=True, env={**os.environ, "LLMTRACE_HOME": str(home)})
    assert ls.returncode == 0, ls.stderr
    assert len(json.loads(ls.stdout)) == len(tests) + 1


def test_offline_replay_needs_no_key_and_sends_nothing(project, tmp_path):
    run = run_project(project, tmp_path / "home", "--llmtrace-record", "none", key=None)
    assert run.code == 0, run.out
    assert run.requests == 0
    assert "14 replayed, 0 live" in run.out
    assert "answers recorded" not in run.out


LATER = '''
import agent


def test_added_later():
    assert agent.chain().invoke({"question": "What is the capital of Spain?"})
'''


def test_a_test_added_later_fails_with_a_diff_and_sends_nothing(project, tmp_path):
    (project / "tests" / "test_later.py").write_text(LATER)
    run = run_project(project, tmp_path / "home", "--llmtrace-record", "none", "-n", "2", key=None)
    assert run.code == 1, run.out
    assert run.requests == 0
    assert "1 failed, 9 passed" in run.out
    assert "14 replayed, 0 live, 1 refused (no recorded answer)" in run.out  # the workers' reports reach the summary
    db = sqlite3.connect(tmp_path / "home" / "traces.db")
    assert len({r[0] for r in db.execute("SELECT run_id FROM traces")}) == 1  # one run across the workers
    assert db.execute("SELECT COUNT(*) FROM traces").fetchone()[0] == 11
    assert "no recorded answer for this openai.chat.completions request (--llmtrace-record none); nothing was sent" in run.out
    assert "nearest recorded request" in run.out
    # the diff: the nearest recorded request's question against the one sent
    assert "nearest recorded request (another test's, in test_agent/test_chain.json)" in run.out
    assert "-user: What is the capital of France?" in run.out
    assert "+user: What is the capital of Spain?" in run.out
    assert not (project / "tests" / "recorded_answers" / "test_later").exists()


def test_default_mode_replays_and_a_changed_test_fails_rather_than_going_live(project, tmp_path):
    test = project / "tests" / "test_agent.py"
    test.write_text(test.read_text().replace("What is the capital of France?", "What is the capital of Peru?")
                    .replace('.startswith("I can only")', ""))
    before = answer_files(project)
    run = run_project(project, tmp_path / "home", "--llmtrace")
    assert run.code == 1 and "1 failed, 8 passed" in run.out, run.out
    assert run.requests == 0
    assert "re-record with new_episodes or all" in run.out
    assert "13 replayed, 0 live, 1 refused" in run.out  # the other tests replayed their answers
    assert answer_files(project) == before


def test_new_episodes_records_only_what_is_missing(project, tmp_path):
    (project / "tests" / "test_later.py").write_text(LATER)
    before = answer_files(project)
    run = run_project(project, tmp_path / "home", "--llmtrace-record", "new_episodes")
    assert run.code == 0, run.out
    assert run.requests == 1
    after = answer_files(project)
    assert {k: v for k, v in after.items() if k in before} == before
    assert set(after) - set(before) == {"test_later/test_added_later.json"}
    again = run_project(project, tmp_path / "home", "--llmtrace-record", "none", key=None)
    assert again.code == 0 and again.requests == 0, again.out


def test_recording_the_same_answers_again_changes_no_byte(project, tmp_path):
    before = answer_files(project)
    stamps = {p: p.stat().st_mtime_ns for p in (project / ANSWERS).iterdir()}
    run = run_project(project, tmp_path / "home", "--llmtrace-record", "all")
    assert run.code == 0, run.out
    assert run.requests == 14  # everything asked again
    assert answer_files(project) == before
    assert {p: p.stat().st_mtime_ns for p in (project / ANSWERS).iterdir()} == stamps  # not even rewritten


def test_recording_changed_answers_rewrites_the_file(project, tmp_path):
    script = json.loads(json.dumps(SCRIPT))
    script["replies"][-1]["content"] = "I can only say something new now. You asked: {last_user}"
    server = MockServer(Script.from_dict(script)).start()
    try:
        run = run_project(project, tmp_path / "home", "--llmtrace-record", "all", server=server)
    finally:
        server.stop()
    assert run.code == 0, run.out
    chain = json.loads((project / ANSWERS / "test_chain.json").read_text())
    assert "something new" in chain["calls"][0]["response"]["body"]["choices"][0]["message"]["content"]


def test_no_key_and_no_recording_says_so(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(PROJECT, project)
    run = run_project(project, tmp_path / "home", "--llmtrace", "-k", "test_chain", key=None)
    assert run.code == 1
    assert run.requests == 0
    assert "no API key to record it with (set OPENAI_API_KEY" in run.out


BUDGET = '''
import pytest

import agent


@pytest.mark.llmtrace(max_calls=2)
def test_within_budget():
    agent.chain().invoke({"question": "What is the capital of France?"})


@pytest.mark.llmtrace(max_calls=3)
def test_over_budget():
    agent.agent().invoke({"messages": [{"role": "user", "content": "What is 3 to the fifth power times 36, squared?"}]})


@pytest.mark.llmtrace(max_tokens=10)
def test_over_token_budget():
    agent.chain().invoke({"question": "What is the capital of France?"})


def test_swallowed_refusal():
    try:
        agent.chain().invoke({"question": "never recorded"})
    except Exception:
        pass
'''


def test_budgets_and_swallowed_refusals_fail_the_test(project, tmp_path):
    (project / "tests" / "test_budget.py").write_text(BUDGET)
    run = run_project(project, tmp_path / "home", "--llmtrace-record", "new_episodes", "tests/test_budget.py",
                      "-k", "not swallowed")
    assert "1 passed" in run.out and "2 failed" in run.out, run.out
    assert "4 LLM calls > max_calls=3" in run.out
    assert "tokens > max_tokens=10" in run.out
    replay = run_project(project, tmp_path / "home", "--llmtrace-record", "none", "tests/test_budget.py", key=None)
    assert replay.requests == 0
    assert "1 passed" in replay.out and "3 failed" in replay.out, replay.out  # budgets hold on replayed answers
    assert "FAILED tests/test_budget.py::test_swallowed_refusal - llmtrace: no recorded answer" in replay.out


INERT = '''
import sys


def test_nothing_loaded():
    assert "llmtrace.testkit.suite" not in sys.modules
    assert "llmtrace.capture" not in sys.modules
    assert not any(m.startswith(("langchain", "openai")) for m in sys.modules)


def test_fixture_needs_the_option(llmtrace):
    pass
'''


def test_without_the_option_the_plugin_does_nothing(tmp_path):
    (tmp_path / "test_inert.py").write_text(INERT)
    run = run_project(tmp_path, tmp_path / "home", "test_inert.py", "-p", "no:langsmith")
    assert "1 passed, 1 error" in run.out, run.out
    assert "the llmtrace fixture needs `pytest --llmtrace`" in run.out
    assert " llmtrace =" not in run.out  # no summary
    assert not (tmp_path / "home").exists()


def test_the_option_shows_in_help(tmp_path):
    run = run_project(tmp_path, tmp_path / "home", "--help")
    assert "--llmtrace-record=MODE" in run.out and "new_episodes" in run.out
