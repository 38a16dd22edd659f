"""Conversations under `run --split`: a real LangGraph graph with a checkpointer and interrupt()
(human in the loop), two turns on one thread and one on another, through the scripted server. The
app's labels (LangChain metadata, LangGraph's thread_id) are trace tags; `llmtrace thread` lists a
thread's turns in order; an interrupt is a pause, not a failure; a resume says it is one."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import AGENTS, ROOT, run_cli, server_env

SCRIPT = str(AGENTS / "graph_thread.py")


def _json(*args, env):
    r = run_cli(*args, "--json", env=env)
    assert r.code == 0, r.stderr
    return json.loads(r.stdout)


def test_graph_threads_tags_and_pauses(mock_server, llmtrace_home):
    from llmtrace.render.html import page_data
    from llmtrace.store import open_store
    from llmtrace.store.queries import get_spans, get_trace

    server = mock_server()
    env = server_env(server)
    python = subprocess.run([sys.executable, SCRIPT], capture_output=True, text=True, env={**os.environ, **env},
                            cwd=str(ROOT), timeout=300)
    assert python.returncode == 0, python.stderr
    r = run_cli("run", "--split", "--no-cache", SCRIPT, env=env)
    assert r.code == 0, r.stderr
    assert r.stdout == python.stdout  # tracing changes nothing the graph does

    traces = _json("ls", "-n", "50", env=env)
    assert len(traces) == 6
    oldest_first = traces[::-1]
    assert [t["name"] for t in oldest_first] == [
        "LangGraph: What is the capital of France?", "LangGraph: resume yes", "LangGraph: What is 2 + 2?",
        "LangGraph: resume yes", "LangGraph: And of Spain?", "LangGraph: resume yes"]
    # interrupt() is a pause: its own status, not an error, not counted in errors.
    assert [t["status"] for t in oldest_first] == ["paused", "ok"] * 3
    assert all(t["totals"]["errors"] == 0 and t["error"] is None for t in traces)
    assert [t["tags"] for t in oldest_first] == [{"thread_id": "t-1", "user_id": "alice"}] * 2 + [
        {"thread_id": "t-2", "user_id": "bob"}] * 2 + [{"thread_id": "t-1", "user_id": "alice"}] * 2
    assert [t["id"] for t in _json("ls", "--status", "paused", env=env)] == [
        t["id"] for t in traces if t["status"] == "paused"]

    # Tags from metadata filter and group.
    assert {t["id"] for t in _json("ls", "--tag", "user_id=alice", env=env)} == {
        t["id"] for t in traces if t["tags"].get("user_id") == "alice"}
    rows = {row["key"]: row for row in _json("cost", "--by", "tag:user_id", env=env)["rows"]}
    assert set(rows) == {"alice", "bob"} and rows["alice"]["calls"] == 2 and rows["bob"]["calls"] == 1

    # The thread view: a conversation's turns in order, with totals.
    view = _json("thread", "t-1", env=env)
    assert [t["id"] for t in view["turns"]] == [t["id"] for t in oldest_first if t["tags"]["thread_id"] == "t-1"]
    assert view["totals"]["llm_calls"] == 2 == sum(t["totals"]["llm_calls"] for t in view["turns"])
    assert abs(view["totals"]["cost"] - sum(t["totals"]["cost"] for t in view["turns"])) < 1e-9
    text = run_cli("thread", "t-1", env=env)
    assert text.code == 0 and "thread t-1  4 turns · 2 LLM calls" in text.stdout and "2 paused" in text.stdout
    assert "And of Spain?" in text.stdout and "What is 2 + 2?" not in text.stdout
    missing = run_cli("thread", "nope", env=env)
    assert missing.code == 2 and missing.stderr.count("\n") == 1 and "no traces of thread 'nope'" in missing.stderr

    # show: the pause is marked as one (no ✗, no traceback); the resume is labelled, with its value.
    paused = run_cli("show", oldest_first[4]["id"], env=env)
    assert paused.code == 0
    assert "⏸ paused: {\"question\": \"send this answer?\"}" in paused.stdout, paused.stdout
    assert "✗" not in paused.stdout and "Traceback" not in paused.stdout and "File " not in paused.stdout
    assert "\ninput: And of Spain?\n" in paused.stdout
    resumed = run_cli("show", oldest_first[5]["id"], env=env)
    assert "\nresume: yes\n" in resumed.stdout and "↻ resume LangGraph" in resumed.stdout

    # view: the request's input and output at the root; no failed spans.
    db = open_store(llmtrace_home / "traces.db")
    try:
        t = get_trace(db, oldest_first[4]["id"])
        data = page_data(t, get_spans(db, t.id, payloads=True))
    finally:
        db.close()
    assert data["trace"]["io"]["input"] == "And of Spain?"
    assert "And of Spain?" in data["trace"]["io"]["output"]
    assert data["trace"]["totals"]["errors"] == 0
    assert [s["st"] for s in data["spans"] if s["nm"] == "approve"] == ["paused"]


def test_a_run_that_is_one_trace_takes_its_labels_from_its_first_invocations(mock_server, llmtrace_home):
    """Without --split the three conversations are one trace: it gets each label from the first top-level
    invocation that has it (thread t-1), a tag given with `run --tag` keeps its value, and the trace is
    found by its labels, grouped by them, and listed as the thread's one turn."""
    server = mock_server()
    env = server_env(server)
    r = run_cli("run", "--no-cache", "--tag", "user_id=ops", SCRIPT, env=env)
    assert r.code == 0, r.stderr
    [trace] = _json("ls", env=env)
    assert trace["tags"] == {"user_id": "ops", "thread_id": "t-1"}
    assert [t["id"] for t in _json("ls", "--tag", "thread_id=t-1", env=env)] == [trace["id"]]
    assert _json("ls", "--tag", "user_id=alice", env=env) == []  # the command line's value stayed
    rows = {row["key"]: row["calls"] for row in _json("cost", "--by", "tag:thread_id", env=env)["rows"]}
    assert rows == {"t-1": 3}
    view = _json("thread", "t-1", env=env)
    assert [t["id"] for t in view["turns"]] == [trace["id"]] and view["totals"]["llm_calls"] == 3
