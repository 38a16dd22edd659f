"""Faults, concurrency, damaged files, odd payloads, secrets and stress: each scenario proven by a test.

The observed counts go into the closing note; every test here drives `llmtrace` as a user would.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading

import pytest

from conftest import AGENTS, HANG, ROOT, Pty, default_sigint, last_trace, run_cli, server_env


def _popen_run(args, env):
    return subprocess.Popen([sys.executable, "-m", "llmtrace", "run", *args], env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
                            cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)


@pytest.mark.soak  # eight agent runs at once (~25 s of both cores): the slow step, `pytest -m 'parity or soak'`
def test_eight_runs_at_once_share_store_and_cache(llmtrace_home, mock_server, arrivals):
    server = mock_server()
    seen = arrivals(server)
    env = server_env(server)
    steps = 25
    # The runs make at least 125 requests (5 prompt sets of 25). From the 60th on, they wait at the
    # server until the readers have read twice: reads while the runs write, however the OS schedules.
    readers_read_twice = seen.hold(60, None)
    # Runs 0-3 ask the same questions (they share cache entries); 4-7 ask their own.
    procs = [_popen_run(["--name", f"run{i}", str(AGENTS / "slow_agent.py"), str(steps), f"p{i % 4 if i < 4 else i}"], env)
             for i in range(8)]
    readers_ok = 0
    follow = None
    try:
        # `show --follow` on a terminal, following one of the eight while they all write: it shows an open
        # span (requests from the 60th wait at the server), then, when that run ends, its final tree.
        assert seen.wait_for(61)
        follow = Pty([sys.executable, "-m", "llmtrace", "show", "--follow"],
                     {**os.environ, **env, "TERM": "xterm-256color", "PYTHONUNBUFFERED": "1"})
        assert follow.wait_for("in flight"), follow.text
        while any(p.poll() is None for p in procs):  # ls and show keep working while they write
            ls = run_cli("ls", "--json")
            show = run_cli("show", "last")
            assert ls.code == 0 and show.code in (0, 2), (ls.stderr, show.stderr)  # 2 only before the first trace
            readers_ok += 1
            if readers_ok == 2:
                readers_read_twice.set()
            # The next read once the runs have made some progress: pacing, so the readers do not take
            # the CPU the runs need; the timeout only lets the loop notice that they have ended.
            seen.wait_for(seen.count + 20, timeout=2)
    finally:
        readers_read_twice.set()
    outs = [p.communicate(timeout=HANG) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [e[-500:] for _, e in outs]
    # The final tree: the followed run ended ok with all its calls (its answers are cropped to the terminal).
    assert follow.proc.wait(timeout=HANG) == 0 and follow.wait_for("  ok  ") and follow.wait_for(f"· {steps} LLM calls"), \
        follow.text[-2000:]
    assert not any("locked" in err for _, err in outs)
    assert readers_ok >= 2
    db = sqlite3.connect(llmtrace_home / "traces.db")
    per_trace = dict(db.execute("SELECT t.name, count(s.id) FROM traces t JOIN spans s ON s.trace_id = t.id GROUP BY t.name"))
    assert per_trace == {f"run{i}": steps for i in range(8)}
    hits = db.execute("SELECT count(*) FROM spans WHERE cache_hit IS NOT NULL").fetchone()[0]
    assert hits + server.stats.requests == 8 * steps
    assert not list((llmtrace_home / "spool").glob("*"))
    # The cache is intact: a rerun of one shared prompt set is answered entirely from it.
    server.stats.reset()
    assert run_cli("run", str(AGENTS / "slow_agent.py"), str(steps), "p0", env=env).code == 0
    assert server.stats.requests == 0


def test_damaged_cache_falls_back_to_no_cache(llmtrace_home, mock_server):
    server = mock_server()
    cache = llmtrace_home / "cache"
    cache.mkdir(parents=True)
    (cache / "cache.db").write_bytes(b"garbage, not sqlite" * 50)
    r = run_cli("run", str(AGENTS / "one_call.py"), "hi", env=server_env(server))
    assert r.code == 0 and "scripted reply" in r.stdout
    assert r.stderr.count("response cache disabled") == 1
    assert (cache / "cache.db").read_bytes() == b"garbage, not sqlite" * 50  # left as it was
    trace, spans = last_trace(llmtrace_home)
    assert trace.status == "ok" and len(spans) == 1 and spans[0].cache_hit is None


def _fill_store(home) -> None:
    """Three finished traces with a few big spans each, written as a run writes them."""
    from llmtrace.model import Span, Trace
    from llmtrace.redact import Redactor
    from llmtrace.store import open_store
    from llmtrace.store.writer import StoreWriter

    writer = StoreWriter(open_store(home / "traces.db"), Redactor())
    for t in range(3):
        tid = f"aaaa000{t}-0000-4000-8000-00000000000{t}"
        writer.start_trace(Trace(id=tid, name="one_call.py", start_us=1_000_000 * (t + 1), pid=1))
        for i in range(4):
            span = Span(id=f"{tid[:8]}-{i}", trace_id=tid, parent_id=None, kind="llm", name="ChatOpenAI", start_us=1_000_000 * (t + 1) + i,
                        end_us=1_000_000 * (t + 1) + 500, status="ok", model="gpt-4o-mini", input_tokens=1300, output_tokens=8,
                        inputs={"prompt": "x" * 5000}, outputs={"content": "y" * 2000})
            span.request = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * 5000}]}
            span.response = {"choices": [{"message": {"content": "y" * 2000}}]}
            writer.write_span(span)
        writer.finish_trace(Trace(id=tid, name="one_call.py", start_us=1_000_000 * (t + 1), end_us=1_000_000 * (t + 2), status="ok", exit_code=0))
    writer.db.close()


def test_truncated_store_is_a_clear_error_and_left_alone(llmtrace_home, mock_server):
    server = mock_server()
    _fill_store(llmtrace_home)
    assert run_cli("ls").code == 0  # whole, it reads
    db_file = llmtrace_home / "traces.db"
    sqlite3.connect(db_file).execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = db_file.read_bytes()
    db_file.write_bytes(data[: len(data) // 2])
    for args in (["ls"], ["show", "last"], ["cost"], ["run", str(AGENTS / "one_call.py"), "y"]):
        r = run_cli(*args, env=server_env(server))
        assert r.code == 4, (args, r.stderr)
        assert r.stderr.count("\n") == 1 and "llmtrace: error:" in r.stderr and "Traceback" not in r.stderr
    assert db_file.read_bytes() == data[: len(data) // 2]


def test_big_and_odd_payloads(llmtrace_home, mock_server):
    big = "word " * (2 * 1024 * 1024)  # 10 MiB of reply text
    server = mock_server({"replies": [{"content": big}]})
    r = run_cli("run", str(AGENTS / "odd_payloads.py"), env=server_env(server))
    assert r.code == 0, r.stderr[-2000:]
    assert f"reply {len(big)}" in r.stdout  # the script got the whole reply
    trace, spans = last_trace(llmtrace_home)
    tools = [s for s in spans if s.kind == "tool"]
    assert [str(t.outputs)[:12] for t in tools[:3]] == ["\ufffd\ufffd\x00raw", "<Opaque thin", "bad ? char"]
    llm = next(s for s in spans if s.kind == "llm")
    assert llm.response["llmtrace_truncated"] is True and llm.response["bytes"] > 10_000_000
    assert llm.outputs["llmtrace_truncated"] is True
    assert (llmtrace_home / "traces.db").stat().st_size < 8 * 1024 * 1024
    full = run_cli("show", "last", "--full")
    assert "[truncated: " in full.stdout
    # The cap is configurable.
    r = run_cli("run", str(AGENTS / "odd_payloads.py"), env={**server_env(server), "LLMTRACE_MAX_PAYLOAD_BYTES": "20000000"})
    _, spans = last_trace(llmtrace_home)
    assert next(s for s in spans if s.kind == "llm").outputs["content"] == big


def test_store_locked_too_long_never_breaks_the_script(llmtrace_home, mock_server, arrivals):
    server = mock_server()
    seen = arrivals(server)
    locked = seen.hold(3)  # call 3 waits at the server while the test locks the store ...
    unlocked = seen.hold(6)  # ... and call 6 until the lock is gone: the run cannot end while it is held
    env = {**server_env(server), "LLMTRACE_BUSY_TIMEOUT_MS": "300"}
    proc = _popen_run(["--no-cache", str(AGENTS / "slow_agent.py"), "10"], env)
    err_lines: list[str] = []
    warned = threading.Event()

    def read_stderr() -> None:
        for line in proc.stderr:
            err_lines.append(line)
            if "could not write spans" in line:
                warned.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    holder = None
    try:
        assert seen.wait_for(4), "call 3 never reached the server"  # calls 0-2 are done, the trace is in the store
        holder = sqlite3.connect(llmtrace_home / "traces.db", isolation_level=None, timeout=HANG)
        holder.execute("BEGIN EXCLUSIVE")
        locked.set()  # call 3 ends: its span cannot be written while the lock is held
        assert warned.wait(HANG), "".join(err_lines)
        holder.execute("COMMIT")
        unlocked.set()
        out = proc.stdout.read()
        proc.wait(HANG)
        reader.join(HANG)
    finally:
        if holder is not None:
            holder.close()
        if proc.poll() is None:
            proc.kill()
    err = "".join(err_lines)
    assert proc.returncode == 0 and out.count("done") == 10, err  # the script ran to the end, its output intact
    assert err.count("llmtrace: warning: could not write spans") == 1
    assert "Traceback" not in err
    # What could not be written was kept and lands with the next command.
    trace, spans = last_trace(llmtrace_home)
    assert len([s for s in spans if s.kind == "llm"]) == 10


def test_disk_full_never_breaks_the_script(llmtrace_home, mock_server):
    import resource

    server = mock_server()
    assert run_cli("run", str(AGENTS / "one_call.py"), "make the store", env=server_env(server)).code == 0
    size = sum(p.stat().st_size for p in llmtrace_home.rglob("*") if p.is_file())
    limit = size + 300_000  # files may not grow much past what exists: writes fail like a full disk

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    p = subprocess.run([sys.executable, "-m", "llmtrace", "run", "--no-cache", str(AGENTS / "slow_agent.py"), "60", "x" * 3000],
                       env={**os.environ, **server_env(server)}, cwd=str(ROOT), capture_output=True, text=True,
                       preexec_fn=cap, timeout=HANG)
    assert p.returncode == 0 and p.stdout.count("done") == 60, p.stderr[-1500:]
    assert "Traceback" not in p.stderr
    # Said once per part that failed, not per span (60 here): the spool, the store (by the helper process and
    # by the run's own process at its end), the trace record, the response cache.
    assert 1 <= p.stderr.count("llmtrace: warning") <= 5
    assert run_cli("ls").code == 0


def test_retries_under_stress(llmtrace_home, mock_server):
    server = mock_server({"fault_rate": 0.3, "fault_statuses": [429, 500, 502, 503], "seed": 7})
    env = {**server_env(server), "LLMTRACE_RETRY_BASE_DELAY": "0.001"}
    r = run_cli("run", "--no-cache", "--retries", "8", str(AGENTS / "slow_agent.py"), "50", env=env)
    assert r.code == 0, r.stderr[-1500:]
    trace, spans = last_trace(llmtrace_home)
    llm = [s for s in spans if s.kind == "llm"]
    assert len(llm) == 50 and all(s.status == "ok" for s in llm)
    failures = sum(len(s.metadata.get("attempt_log", [])) for s in llm)
    assert sum(s.attempts for s in llm) == server.stats.requests == 50 + failures
    assert failures == server.stats.requests - server.stats.by_status[200] > 5
    assert trace.totals.retries == failures


def test_ctrl_c_marks_open_spans_interrupted(llmtrace_home, mock_server, arrivals):
    server = mock_server()
    seen = arrivals(server)
    seen.hold(1)  # the second call stays at the server: Ctrl-C comes while it is open
    proc = _popen_run(["--no-cache", str(AGENTS / "slow_agent.py"), "20"], server_env(server))
    try:
        assert seen.wait_for(2), "the second call never reached the server"  # inside the next call
        proc.send_signal(2)
        out, err = proc.communicate(timeout=HANG)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert out == "step 0 done\n", (out, err)
    assert proc.returncode == -2  # killed by SIGINT, as python ends on an uncaught KeyboardInterrupt
    trace, spans = last_trace(llmtrace_home)
    assert trace.status == "interrupted"
    assert [s.status for s in spans if s.kind == "llm"][-1] == "interrupted"
