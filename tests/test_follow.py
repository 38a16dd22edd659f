"""`show --follow` on a terminal (a pseudo-terminal): the tree grows while the run goes on, the span
in flight is marked, and when the trace ends the final tree is printed as `show` prints it. The run
is held at the scripted server (an event), never timed."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import AGENTS, HANG, ROOT, Pty, run_cli, server_env

def test_follow_shows_the_span_in_flight_then_the_final_tree(mock_server, arrivals, llmtrace_home):
    server = mock_server()
    watch = arrivals(server)
    gate = watch.hold(1)  # the second call waits at the server until the test has seen it in flight
    # COLUMNS as the terminal's size and run_cli's: pytest-xdist's workers have COLUMNS=80 in their environment,
    # and show crops its lines to the width it is given.
    env = {**os.environ, **server_env(server), "PYTHONUNBUFFERED": "1", "TERM": "xterm-256color", "COLUMNS": "120"}
    env.pop("NO_COLOR", None)
    run = subprocess.Popen([sys.executable, "-m", "llmtrace", "run", "-q", "--no-cache", str(AGENTS / "slow_agent.py"), "3"],
                           env=env, cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert watch.wait_for(2)  # the held request has arrived: one call done, one in flight
        follow = Pty([sys.executable, "-m", "llmtrace", "show", "--follow"], env)
        assert follow.wait_for("in flight"), follow.text
        assert follow.wait_for("following"), follow.text
        # The finished first call, from the store: there once the run's helper process has started (half
        # a second after the run's first span) and stored it.
        assert follow.wait_for("LLM gpt-4o-mini-2024-07-18"), follow.text
        live = follow.text
        assert "slow_agent.py" in live and "running" in live
        assert re.search(r"LLM gpt-4o-mini\s+⏳ in flight", live), live  # the held call, marked
        assert "1 span in flight" in live
        assert live.count("LLM gpt-4o-mini-2024-07-18") >= 1  # the finished first call, from the store
        gate.set()
        out, err = run.communicate(timeout=HANG)
        assert run.returncode == 0, err
        assert follow.proc.wait(timeout=HANG) == 0
        assert follow.wait_for("  ok  ")  # the final tree, as show prints it (its answers cropped to the terminal)
    finally:
        gate.set()
        if run.poll() is None:
            run.kill()
    final = follow.text[follow.text.rindex("slow_agent.py"):]
    shown = run_cli("show", "--no-pager").stdout
    assert [line.rstrip() for line in final.strip().splitlines()] == [line.rstrip() for line in shown.strip().splitlines()]


def test_follow_without_a_running_trace_is_a_clear_error(llmtrace_home):
    r = run_cli("show", "--follow")
    assert r.code == 2 and "no trace is running" in r.stderr and "Traceback" not in r.stderr
    assert run_cli("show", "--follow", "--json").code == 2


def test_ls_watch_shows_new_traces_until_ctrl_c(mock_server, llmtrace_home):
    import signal

    server = mock_server()
    env = {**os.environ, **server_env(server), "PYTHONUNBUFFERED": "1", "TERM": "xterm-256color"}
    watch = Pty([sys.executable, "-m", "llmtrace", "ls", "--watch"], env)
    assert watch.wait_for("no traces yet"), watch.text
    assert run_cli("run", "-q", "--name", "watched-run", str(AGENTS / "one_call.py"), "hi", env=server_env(server)).code == 0
    assert watch.wait_for("watched-run"), watch.text  # the next refresh lists it
    watch.proc.send_signal(signal.SIGINT)
    assert watch.proc.wait(timeout=HANG) == 0
    assert "Traceback" not in watch.text
    r = run_cli("ls", "--watch")  # not a terminal
    assert r.code == 2 and "needs a terminal" in r.stderr


def test_in_flight_file_holds_only_spans_open_for_a_whole_interval(tmp_path):
    """A loop of fast calls must not rewrite the live file at every tick: a span younger than one
    interval is left out (it is likely in the store before a reader looks); one open longer is in."""
    import json

    from llmtrace.core.inflight import InFlightPublisher, read_in_flight
    from llmtrace.model import Trace
    from llmtrace.core.recorder import MemoryExporter, Recorder

    rec = Recorder(Trace(id="t1", name="x", start_us=0), [MemoryExporter()])
    span = rec.start_span(kind="llm", name="ChatOpenAI", parent_id=None)
    path = tmp_path / "live" / "t1.json"
    pub = InFlightPublisher(rec, path, interval_s=0.2)
    path.parent.mkdir()
    pub.publish(at_us=span.start_us + 199_999)
    assert json.loads(path.read_text()) == []
    pub.publish(at_us=span.start_us + 200_000)
    assert [s.id for s in read_in_flight(tmp_path, "t1")] == [span.id]
    rec.end_span(span)
    pub.publish(at_us=span.start_us + 400_000)
    assert json.loads(path.read_text()) == []
