"""Servers under `run --split`: real uvicorn with worker processes (`workers=2`, spawned), in its reloader
(`--reload`) and as gunicorn's workers (`-k uvicorn.workers.UvicornWorker -w 2`, forked from the traced
master), real FastAPI endpoints (sync and async) answering with a LangChain chain through the
scripted server. Each request is a trace of its own, stored when it ends while the server runs, with
exactly its request's spans; Ctrl-C (SIGINT to the process group, as a terminal sends it) ends the run
with the same 20 traces. Every wait is for a condition (a port answering, the store holding what is
expected), with a generous overall timeout."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import AGENTS, HANG, ROOT, Pty, assert_no_orphans, default_sigint, run_cli, server_env

pytest.importorskip("uvicorn")
pytest.importorskip("fastapi")

APP = str(AGENTS / "uvicorn_app.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _until(what: str, check, timeout: float = HANG):
    """Poll `check()` until it returns something truthy; fail with `what` after `timeout` (a hang guard)."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _get(port: int, path: str) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=60) as r:
            return json.loads(r.read())
    except OSError:
        return None


def _ls(env, *args) -> list[dict]:
    r = run_cli("ls", "--json", "-n", "100", *args, env=env)
    assert r.code == 0, r.stderr
    return json.loads(r.stdout)


def _serve(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "llmtrace", "run", "--split", "--no-cache", *args],
                            env={**os.environ, **env, "PYTHONUNBUFFERED": "1"}, cwd=str(AGENTS),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=default_sigint)


def _requests(port: int) -> dict[int, dict]:
    """20 requests, 10 at once: /ask/N (sync endpoint) for alice, /aask/N (async) for bob."""
    paths = [f"/ask/{n}?user=alice" if n % 2 else f"/aask/{n}?user=bob" for n in range(1, 21)]
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda p: _get(port, p), paths))
    assert all(answers), answers
    return {a["n"]: a for a in answers}


def _check_traces(env, home, traces: list[dict], answers: dict[int, dict], run_pid: int) -> None:
    from llmtrace.store import open_store
    from llmtrace.store.queries import get_spans

    assert len(traces) == 20 and all(t["status"] == "ok" for t in traces), [(t["name"], t["status"]) for t in traces]
    db = open_store(home / "traces.db")
    try:
        seen = set()
        for t in traces:
            spans = get_spans(db, t["id"])
            assert_no_orphans(spans)
            [root] = [s for s in spans if s.parent_id is None]
            n = root.inputs["n"]
            seen.add(n)
            llm = [s for s in spans if s.kind == "llm"]
            assert len(llm) == 1 and f"question {n}" in json.dumps(llm[0].inputs)  # its own request's call, alone
            assert f"question {n}" in json.dumps(root.outputs)
            assert t["totals"]["llm_calls"] == 1
            # Named after the runnable and its input; the app's metadata and tags are the trace's tags.
            assert t["name"] == f"answer: n={n}"
            user, kind = ("alice", "sync") if n % 2 else ("bob", "async")
            assert t["tags"] == {"user_id": user, kind: ""}
            assert t["pid"] != run_pid  # answered in a worker process, not the one llmtrace started
            assert t["pid"] == answers[n]["pid"]
        assert seen == set(range(1, 21))
    finally:
        db.close()


def _stop(proc: subprocess.Popen) -> tuple[str, str]:
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C at the terminal: the whole foreground group
    out, err = proc.communicate(timeout=HANG)
    return out, err


@pytest.mark.parametrize("mode", ["workers", "reload", "gunicorn"])
def test_uvicorn_requests_are_live_traces(mode, mock_server, llmtrace_home):
    if mode == "gunicorn":
        pytest.importorskip("gunicorn")
    server = mock_server()
    env = server_env(server)
    port = _free_port()
    if mode == "workers":  # uvicorn.run(app, workers=2) from the script
        args = [APP, str(port), "2"]
    elif mode == "gunicorn":  # the usual production set-up: workers forked from gunicorn's master, which llmtrace runs
        args = ["-m", "gunicorn", "uvicorn_app:app", "-k", "uvicorn.workers.UvicornWorker", "-w", "2",
                "-b", f"127.0.0.1:{port}", "--log-level", "warning"]
    else:  # uvicorn app:app --reload: the app runs in the reloader's spawned child
        watched = llmtrace_home.parent / "watched"
        watched.mkdir()
        args = ["-m", "uvicorn", "uvicorn_app:app", "--reload", "--reload-dir", str(watched), "--port", str(port),
                "--log-level", "warning"]
    receiver = None
    if mode in ("workers", "gunicorn"):  # and streamed to OTLP live, from the worker processes
        pytest.importorskip("opentelemetry.proto")
        from collector import Collector

        receiver = Collector()
        args = ["--otlp", receiver.url, *args]
    proc = _serve(args, env)
    try:
        _until("the server to answer", lambda: proc.poll() is not None or _get(port, "/pid"))
        assert proc.poll() is None, proc.communicate()
        # Before any request: the run is listed as running, and show --follow finds it.
        [record] = _until("the run's record", lambda: _ls(env, "--status", "running"))
        assert record["run_id"] == record["id"] and record["pid"] == proc.pid
        # show --follow (of the newest running trace, or of the run by its id) follows the run.
        follow = Pty([sys.executable, "-m", "llmtrace", "show", "--follow",
                      *([record["id"][:8]] if mode == "reload" else [])], env={**os.environ, **env})
        assert follow.wait_for(f"following {record['id'][:8]}"), follow.text
        watch = Pty([sys.executable, "-m", "llmtrace", "ls", "--watch"], env={**os.environ, **env, "TERM": "xterm-256color"})
        assert watch.wait_for("running"), watch.text[-3000:]  # the server's run
        answers = _requests(port)
        assert follow.wait_for("20 LLM calls"), follow.text[-3000:]  # the run's traces as they came
        assert watch.wait_for("answer: n="), watch.text[-3000:]  # ls --watch: the requests as they finished
        watch.proc.send_signal(signal.SIGINT)
        assert watch.proc.wait(timeout=HANG) == 0
        # While the server runs: 20 traces, each stored when its request ended.
        def finished() -> list[dict] | None:
            done = [t for t in _ls(env) if t["id"] != record["id"] and t["status"] == "ok"]
            return done if len(done) >= 20 else None

        live = _until("20 finished traces", finished)
        assert proc.poll() is None  # still serving
        _check_traces(env, llmtrace_home, live, answers, proc.pid)
        if receiver is not None:  # each request's trace went out when it ended, with its LLM call, while serving
            from llmtrace.export.otlp import trace_id_bytes

            def sent() -> bool:
                spans = receiver.spans()
                return all(sorted(s.name for s in spans if s.trace_id == trace_id_bytes(t["id"])) ==
                           ["ChatPromptTemplate", "answer", "chat gpt-4o-mini", f"invoke_agent {t['name']}"]
                           for t in live)

            _until("every request's trace at the OTLP receiver", sent)
        running = _ls(env, "--status", "running")
        assert [t["id"] for t in running] == [record["id"]]  # the server is still listed as running
        alice = _ls(env, "--tag", "user_id=alice")
        assert sorted(t["name"] for t in alice) == sorted(f"answer: n={n}" for n in range(1, 21, 2))
        cost = json.loads(run_cli("cost", "--by", "tag:user_id", "--json", env=env).stdout)
        assert {row["key"]: row["calls"] for row in cost["rows"]} == {"alice": 10, "bob": 10}
        one = next(t for t in live if t["name"] == "answer: n=7")
        shown = run_cli("show", one["id"], env=env)
        assert '\ninput: {"n": 7}\noutput: This is a scripted reply' in shown.stdout and "question 7" in shown.stdout
    finally:
        out, err = _stop(proc)
        if receiver is not None:
            receiver.close()
    assert proc.returncode == 0, err
    assert "split into 20 traces" in err, err
    assert follow.proc.wait(timeout=HANG) == 0  # the run ended: following stops
    after = [t for t in _ls(env) if t["id"] != record["id"]]
    assert sorted(t["id"] for t in after) == sorted(t["id"] for t in live)
    _check_traces(env, llmtrace_home, after, answers, proc.pid)
    [ended] = _ls(env, "--run", record["id"])[-1:]
    assert ended["id"] == record["id"] and ended["status"] == "ok" and ended["totals"]["llm_calls"] == 0


def test_run_is_running_while_a_child_lives(tmp_path, llmtrace_home):
    """The first process of a run killed (SIGKILL: it cannot finish the trace), a child process it started
    still recording: the run is listed as running until the child ends, then as killed."""
    gate, started = tmp_path / "gate", tmp_path / "started"
    child = tmp_path / "child.py"
    child.write_text("import os, pathlib, sys, time\n"
                     "pathlib.Path(sys.argv[1]).write_text(str(os.getpid()))\n"
                     "while not pathlib.Path(sys.argv[2]).exists():\n    time.sleep(0.05)\n")
    script = tmp_path / "parent.py"
    script.write_text("import subprocess, sys, time\n"
                      f"subprocess.Popen([sys.executable, {str(child)!r}, {str(started)!r}, {str(gate)!r}])\n"
                      "time.sleep(3600)\n")
    proc = subprocess.Popen([sys.executable, "-m", "llmtrace", "run", "--no-cache", str(script)],
                            env={**os.environ}, start_new_session=True)
    try:
        _until("the child to start", lambda: started.exists() or proc.poll() is not None)
        assert proc.poll() is None
        child_pid = int(_until("the child's pid", lambda: started.read_text().strip()))
        _until("the child's spool", lambda: any(p.name.endswith(f".{child_pid}.spool")
                                                for p in (llmtrace_home / "spool").glob("*.spool")))
        proc.kill()  # the run's first process, at once
        proc.wait(timeout=HANG)
        [t] = _ls({}, "--status", "running")
        assert t["pid"] == proc.pid  # its process is gone, its child is not
        gate.write_text("go")
        _until("the run to show as killed", lambda: [x["id"] for x in _ls({}, "--status", "killed")] == [t["id"]])
    finally:
        gate.write_text("go")
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_notebook_kernel_started_by_nbconvert_is_split(tmp_path, mock_server, llmtrace_home):
    """A Jupyter kernel nbconvert starts (a child process of the run) records each call as a trace of its own."""
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbconvert")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("from langchain_openai import ChatOpenAI\n"
                                          "m = ChatOpenAI(model='gpt-4o-mini', max_retries=0)\n"
                                          "print(m.invoke('cell one').content[:9])"),
                nbformat.v4.new_code_cell("print(m.invoke('cell two').content[:9])")]
    nbformat.write(nb, str(tmp_path / "nb.ipynb"))
    script = tmp_path / "execute.py"
    script.write_text("import nbformat, os\nfrom nbconvert.preprocessors import ExecutePreprocessor\n"
                      f"nb = nbformat.read({str(tmp_path / 'nb.ipynb')!r}, 4)\n"
                      "ExecutePreprocessor(timeout=240).preprocess(nb, {})\n"
                      "print('executed', os.getpid())\n")
    env = server_env(mock_server())
    r = run_cli("run", "--split", "--no-cache", str(script), env=env)
    assert r.code == 0, r.stderr
    run_pid = int(r.stdout.split()[-1])
    traces = [t for t in _ls(env) if t["id"] != t["run_id"]]
    assert sorted(t["name"] for t in traces) == ["ChatOpenAI: cell one", "ChatOpenAI: cell two"]
    assert all(t["status"] == "ok" and t["totals"]["llm_calls"] == 1 and t["pid"] != run_pid for t in traces)
    assert "split into 2 traces" in r.stderr
