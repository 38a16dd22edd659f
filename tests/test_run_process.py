"""`llmtrace run` behaves like `python script.py`: output, argv, __name__, imports, exit codes, signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from conftest import AGENTS, HANG, ROOT, default_sigint, last_trace, run_cli, server_env

SCRIPT = str(AGENTS / "behaves_like_python.py")


def _python(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, cwd=str(ROOT))


def test_same_stdout_argv_name_and_sibling_import(llmtrace_home):
    r = run_cli("run", SCRIPT, "ok", "--city", "Berlin")
    plain = _python("ok", "--city", "Berlin")
    assert r.code == 0 == plain.returncode
    seen = json.loads(r.stdout)
    assert seen["name"] == "__main__"
    assert seen["argv"] == ["ok", "--city", "Berlin"]
    assert seen["helper"] == "sibling import works"
    trace, _ = last_trace(llmtrace_home)
    assert seen["trace_id"] == trace.id
    assert r.stdout.replace(trace.id, "X") == plain.stdout.replace("null", '"X"')
    assert r.stderr.startswith("to stderr\n")
    assert trace.argv == [SCRIPT, "ok", "--city", "Berlin"]
    assert trace.status == "ok" and trace.exit_code == 0 and trace.pid


@pytest.mark.parametrize(
    "args, code, status",
    [(["exit", "3"], 3, "error"), (["exit", "0"], 0, "ok"), (["raise"], 1, "error"),
     (["interrupt"], 130, "interrupted"), (["exitmsg"], 1, "error")],
)
def test_exit_codes_match_python(llmtrace_home, args, code, status):
    r = run_cli("run", SCRIPT, *args)
    plain = _python(*args)
    # An uncaught KeyboardInterrupt ends python by SIGINT (a parent sees -2, a shell 130): llmtrace too.
    assert r.code == plain.returncode == (-signal.SIGINT if args == ["interrupt"] else code)
    trace, _ = last_trace(llmtrace_home)
    assert trace.status == status and trace.exit_code == code


def test_uncaught_exception_traceback_is_the_scripts(llmtrace_home):
    r = run_cli("run", SCRIPT, "raise")
    plain = _python("raise")
    assert "ValueError: boom from the script" in r.stderr
    assert "Traceback (most recent call last)" in r.stderr
    assert "runpy" not in r.stderr and "llmtrace/run/script.py" not in r.stderr
    # The same traceback python prints, line for line.
    assert plain.stderr in r.stderr
    trace, _ = last_trace(llmtrace_home)
    assert trace.error == "ValueError: boom from the script"


def test_sys_exit_message_goes_to_stderr(llmtrace_home):
    r = run_cli("run", SCRIPT, "exitmsg")
    assert "fatal: message exit" in r.stderr and r.code == 1


def test_options_trace_id_name_tags_quiet(llmtrace_home):
    tid = "0192a3b4-c5d6-7e8f-9a0b-1c2d3e4f5a6b"
    r = run_cli("run", "--trace-id", tid, "--name", "nightly", "--tag", "env=dev", "--tag", "team=core", "-q", SCRIPT)
    assert r.code == 0, r.stderr
    assert r.stderr == "to stderr\n"  # --quiet: no summary
    assert json.loads(r.stdout)["trace_id"] == tid
    trace, _ = last_trace(llmtrace_home)
    assert (trace.id, trace.name, trace.tags) == (tid, "nightly", {"env": "dev", "team": "core"})
    again = run_cli("run", "--trace-id", tid, SCRIPT)
    assert again.code == 2 and "already exists" in again.stderr


def _wait_for(proc: subprocess.Popen, text: str) -> None:
    """Read the process's stdout until `text` appears (an event, not a time); fail if it ends first."""
    buf = ""
    for line in proc.stdout:
        buf += line
        if text in buf:
            return
    raise AssertionError(f"never saw {text!r}; got {buf!r}")


def _start_slow(mock_server, steps: int = 200):
    server = mock_server()
    env = {**os.environ, **server_env(server), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "llmtrace", "run", str(AGENTS / "slow_agent.py"), str(steps)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=str(ROOT),
                            preexec_fn=default_sigint)
    _wait_for(proc, "step 4 done")
    return server, proc


def test_sigkill_keeps_finished_spans_and_shows_killed(llmtrace_home, mock_server):
    server, proc = _start_slow(mock_server)
    proc.kill()
    proc.wait(HANG)
    printed = proc.stdout.read().count("done")  # steps the script saw finish before the kill
    trace, spans = last_trace(llmtrace_home)
    assert trace.status == "killed"
    finished = [s for s in spans if s.kind == "llm" and s.status == "ok"]
    # Every call whose span had ended is on disk: at least every step the script printed, and
    # at most one fewer than the requests the server answered (one may have been in flight).
    assert len(finished) >= 5 + printed and server.stats.requests - len(finished) <= 1
    assert not list((llmtrace_home / "spool").glob("*.spool"))  # the spool was loaded and removed
    assert trace.totals.llm_calls == len(spans)
    r = run_cli("ls")
    assert r.code == 0 and "killed" in r.stdout


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_ctrl_c(llmtrace_home, mock_server, sig, code):
    server, proc = _start_slow(mock_server)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=HANG)
    assert proc.returncode == -sig, err  # died of the signal, as python does
    trace, spans = last_trace(llmtrace_home)
    assert trace.status == "interrupted" and trace.exit_code == code
    assert all(s.end_us is not None for s in spans)
    assert {s.status for s in spans} <= {"ok", "interrupted", "error"}


def test_argv0_and_file_as_python_sets_them(llmtrace_home, tmp_path):
    script = tmp_path / "where.py"
    script.write_text("import sys\nprint(sys.argv[0], __file__, __spec__, sys.path[0])\n")
    plain = subprocess.run([sys.executable, "./where.py", "x"], capture_output=True, text=True, cwd=str(tmp_path))
    r = run_cli("run", "-q", "./where.py", "x", cwd=tmp_path)
    assert r.code == 0 and r.stdout == plain.stdout
    assert r.stdout.startswith("./where.py ")  # as typed, not made absolute


def test_syntax_error_reported_as_python_does(llmtrace_home, tmp_path):
    (tmp_path / "broken.py").write_text("x = 1\ndef f(:\n    pass\n")
    plain = subprocess.run([sys.executable, "broken.py"], capture_output=True, text=True, cwd=str(tmp_path))
    r = run_cli("run", "-q", "broken.py", cwd=tmp_path)
    assert (r.code, r.stdout, r.stderr) == (plain.returncode, plain.stdout, plain.stderr) == (1, "", plain.stderr)
    assert "SyntaxError" in r.stderr


FORKS = """\
import multiprocessing, os, signal

def disposition(_=None):
    handler = signal.getsignal(signal.SIGTERM)
    return "default" if handler == signal.SIG_DFL else repr(handler)

pid = os.fork()
if pid == 0:
    print("os.fork child:", disposition(), flush=True)
    os._exit(0)
os.waitpid(pid, 0)
with multiprocessing.get_context("fork").Pool(2) as pool:
    print("pool workers:", sorted(set(pool.map(disposition, range(4)))))
"""


def test_a_fork_child_gets_sigterms_default_action(llmtrace_home, tmp_path):
    # A Python-level SIGTERM handler left in a Pool worker can miss a signal that lands just before
    # the worker blocks on its queue's lock: Pool.terminate() then waits for it for ever.
    (tmp_path / "forks.py").write_text(FORKS)
    plain = subprocess.run([sys.executable, "forks.py"], capture_output=True, text=True, cwd=str(tmp_path))
    r = run_cli("run", "-q", "forks.py", cwd=tmp_path)
    assert plain.returncode == 0 and plain.stdout.count("default") == 2, plain.stderr
    assert (r.code, r.stdout) == (0, plain.stdout), r.stderr


DEEP_CALLS = """\
def leaf(a, b, c):
    return a

def down(n):
    if n == 0:
        return sum(leaf(1, 2, 3) for _ in range(20))
    return down(n - 1)

for depth in range(600):
    down(depth)
"""


def _stack_chunk_maps(cmd: list[str], cwd) -> int:
    """How often the main thread mapped a 16 KiB anonymous block: CPython's frame-stack chunks."""
    log = cwd / "strace.log"
    subprocess.run(["strace", "-f", "-e", "trace=mmap", "-o", str(log), *cmd], cwd=str(cwd), check=True,
                   capture_output=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    lines = log.read_text().splitlines()
    main = lines[0].split()[0]
    return sum(1 for line in lines if line.split()[0] == main and "mmap(NULL, 16384, " in line)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="frames live on a chunked stack from CPython 3.11")
def test_the_scripts_frames_sit_on_the_stack_as_under_python(llmtrace_home, tmp_path):
    # A call crossing the end of a 16 KiB frame-stack chunk maps and unmaps one each time. Under llmtrace's
    # own frames the ends fell elsewhere: 2,400+ maps here instead of python's 2,200, and 24,000 instead of
    # 5,200 while importing LangChain (0.1-0.3 s of start-up). The script must open a chunk as it does
    # under python, whatever the depth llmtrace runs it from.
    import shutil

    if shutil.which("strace") is None:
        from conftest import skip_unless_ci

        skip_unless_ci("strace is not installed")
    (tmp_path / "deep.py").write_text(DEEP_CALLS)
    plain = _stack_chunk_maps([sys.executable, "deep.py"], tmp_path)
    traced = _stack_chunk_maps([sys.executable, "-m", "llmtrace", "run", "-q", "deep.py"], tmp_path)
    assert plain > 1000  # the script does cross chunk ends, so the layout shows
    assert plain <= traced <= plain + 3, (plain, traced)  # + the chunk the script's frame opens


@pytest.mark.parametrize("how", ["python", "llmtrace"])
def test_sigterm_skips_finally_and_ends_by_the_signal(llmtrace_home, how):
    script = str(AGENTS / "waits_in_finally.py")
    cmd = [sys.executable, script] if how == "python" else [sys.executable, "-m", "llmtrace", "run", script]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(ROOT),
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    _wait_for(proc, "waiting")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=HANG)
    assert proc.returncode == -signal.SIGTERM
    assert "finally ran" not in out
    if how == "llmtrace":
        trace, _ = last_trace(llmtrace_home)
        assert trace.status == "interrupted" and trace.exit_code == 143 and trace.end_us is not None
        assert "interrupted" in err  # the summary was printed before the process ended


def test_a_child_records_from_its_first_import_of_what_llmtrace_captures(llmtrace_home, tmp_path, mock_server):
    """A Python child of a run starts recording when it imports LangChain (or openai, anthropic, httpx), not
    at its start: one that never does (a tool, multiprocessing's resource tracker) loads no session, no
    SQLite, and leaves no spool file; one that does joins the run's trace with its call."""
    server = mock_server()
    child = tmp_path / "child.py"
    child.write_text(
        "import sys\n"
        "print('before', [m for m in ('llmtrace.core.session', 'sqlite3', 'llmtrace.capture.handler') if m in sys.modules])\n"
        "if sys.argv[1] == 'llm':\n"
        "    from langchain_openai import ChatOpenAI\n"
        "    print('after', 'llmtrace.core.session' in sys.modules)\n"
        "    ChatOpenAI(model='gpt-4o-mini', max_retries=0).invoke('hi from the child')\n")
    script = tmp_path / "parent.py"
    script.write_text("import subprocess, sys\n"
                      f"for how in ('plain', 'llm'):\n    subprocess.run([sys.executable, {str(child)!r}, how], check=True)\n")
    r = run_cli("run", "--no-cache", str(script), env=server_env(server))
    assert r.code == 0, r.stderr
    assert r.stdout.splitlines() == ["before []", "before []", "after True"]
    trace, spans = last_trace(llmtrace_home)
    assert [s.kind for s in spans if s.kind == "llm"] == ["llm"] and server.stats.requests == 1
    assert list((llmtrace_home / "spool").iterdir()) == []
