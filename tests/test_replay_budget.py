"""`llmtrace replay` and run budgets, end to end through the scripted server (and, for replays, with no
server at all)."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from conftest import AGENTS, SAMPLES, last_trace, run_cli, server_env

MATH = str(SAMPLES / "math_agent.py")
EDITED = "You are a careful mathematician. Show no work."
NO_KEY = {"OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""}  # nothing to reach a provider with


def _no_provider_env():
    env = dict(os.environ)
    for k in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"):
        env.pop(k, None)
    return env


def _run_clean(*args):
    """run_cli with no provider settings at all (run_cli merges os.environ, so clear them there)."""
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith(("OPENAI_", "ANTHROPIC_"))}
    try:
        return run_cli(*args)
    finally:
        os.environ.update(saved)


def test_replay_of_the_math_agent_offline_then_diff_and_an_edited_script(mock_server, llmtrace_home, tmp_path):
    server = mock_server(json.loads((SAMPLES / "math_agent.mock.json").read_text()))
    live = run_cli("run", "-q", "--no-cache", MATH, env=server_env(server))
    assert live.code == 0 and server.stats.requests == 4
    original, _ = last_trace(llmtrace_home)
    server.stats.reset()

    r = _run_clean("replay", original.id[:8])  # no key, no base URL, no server: answers from the trace
    assert r.code == 0, r.stderr
    assert r.stdout == live.stdout and server.stats.requests == 0
    assert "4 of 4 recorded calls answered from the recording" in r.stderr
    replayed, spans = last_trace(llmtrace_home)
    assert replayed.tags["replay_of"] == original.id and replayed.totals.cost == 0
    assert [s.cache_hit for s in spans if s.kind == "llm"] == ["replay"] * 4
    assert replayed.totals.cost_saved == pytest.approx(original.totals.cost)
    d = json.loads(run_cli("diff", original.id, replayed.id, "--json").stdout)
    assert not d["differs"] and len(d["steps"]) == 7  # a trace and its replay: no step changed

    # An edited copy of the script: the first request differs; reported with its diff, and it stops there.
    edited = tmp_path / "math_agent.py"
    edited.write_text((SAMPLES / "math_agent.py").read_text().replace("You are a helpful assistant", EDITED))
    r = _run_clean("replay", original.id, "--script", str(edited))
    assert r.code == 1 and r.stdout == ""
    assert "replay diverged at call 1 (openai.chat.completions gpt-4o-mini): the request differs from the recording's call 1 of 4" in r.stderr
    assert "-system: You are a helpful assistant" in r.stderr and f"+system: {EDITED}" in r.stderr
    assert "llmtrace.errors.ReplayDiverged" in r.stderr  # raised at the call site, in the script's traceback
    assert "0 of 4 recorded calls answered from the recording, then it diverged" in r.stderr
    assert server.stats.requests == 0

    # … or goes on live after the divergence, against the scripted server.
    r = run_cli("replay", original.id, "--script", str(edited), "--live-after-divergence", env=server_env(server))
    assert r.code == 0 and "76527504" in r.stdout and server.stats.requests == 4
    r = _run_clean("replay", original.id, "--live-after-divergence")
    assert r.code == 2 and "needs an API key" in r.stderr


def test_replay_of_an_imported_trace_in_a_fresh_home(mock_server, llmtrace_home, tmp_path, monkeypatch):
    server = mock_server(json.loads((SAMPLES / "math_agent.mock.json").read_text()))
    live = run_cli("run", "-q", MATH, env=server_env(server))
    assert live.code == 0
    exported = tmp_path / "trace.json"
    assert run_cli("export", "last", "-o", str(exported)).code == 0
    monkeypatch.setenv("LLMTRACE_HOME", str(tmp_path / "elsewhere"))  # another machine: nothing but the file
    assert run_cli("import", str(exported)).code == 0
    server.stats.reset()
    r = _run_clean("replay", "last")
    assert r.code == 0, r.stderr
    assert r.stdout == live.stdout and server.stats.requests == 0


def test_replay_streams_chunk_for_chunk_and_failures_on_request(mock_server, llmtrace_home):
    server = mock_server({"faults": [429]})
    live = run_cli("run", "-q", "--no-cache", str(AGENTS / "stream_chunks.py"), env={**server_env(server), "LLMTRACE_RETRY_BASE_DELAY": "0.01"})
    assert live.code == 0 and len(json.loads(live.stdout)) > 3
    original, spans = last_trace(llmtrace_home)
    [llm] = [s for s in spans if s.kind == "llm"]
    assert llm.attempts == 2  # the 429, then the answer
    server.stats.reset()

    r = _run_clean("replay", "last")
    assert r.code == 0 and r.stdout == live.stdout  # the same chunks, one for one
    [again] = [s for s in last_trace(llmtrace_home)[1] if s.kind == "llm"]
    # No HTTP attempt was made: the answer came from the recording (retries on: attempts is counted, 0).
    assert again.streamed and again.attempts == 0 and "attempt_log" not in again.metadata

    r = _run_clean("replay", original.id, "--with-failures")
    assert r.code == 0 and r.stdout == live.stdout
    [failing] = [s for s in last_trace(llmtrace_home)[1] if s.kind == "llm"]
    assert failing.attempts == 2 and failing.metadata["attempt_log"][0]["status"] == 429
    assert server.stats.requests == 0


def test_max_calls_stops_a_loop_where_the_script_can_catch_it(mock_server, llmtrace_home):
    server = mock_server()
    env = server_env(server)
    r = run_cli("run", "--max-calls", "5", str(AGENTS / "loop_agent.py"), env=env)
    assert r.code == 0, r.stderr
    assert "stopped after 5 calls: llmtrace budget --max-calls 5 reached after 5 LLM calls" in r.stdout
    assert server.stats.requests == 5
    trace, spans = last_trace(llmtrace_home)
    assert trace.status == "over-budget" and "--max-calls 5" in trace.error
    refused = [s for s in spans if s.status == "error"]
    assert len(refused) == 1 and refused[0].error_type == "BudgetExceeded"
    assert "stopped: llmtrace budget --max-calls 5" in r.stderr
    assert [t["id"] for t in json.loads(run_cli("ls", "--status", "over-budget", "--json").stdout)] == [trace.id]

    # Cache hits cost nothing: the same loop again replays its 5 answers, then makes 5 new calls.
    server.stats.reset()
    r = run_cli("run", "--max-calls", "5", str(AGENTS / "loop_agent.py"), env=env)
    assert "stopped after 10 calls" in r.stdout and server.stats.requests == 5

    # Uncaught, it ends the script as any exception does (exit 1, its traceback), status over-budget.
    r = run_cli("run", "--no-cache", "--max-calls", "2", str(AGENTS / "loop_agent.py"), "--uncaught", env=env)
    assert r.code == 1 and "llmtrace.errors.BudgetExceeded: llmtrace budget --max-calls 2" in r.stderr
    assert last_trace(llmtrace_home)[0].status == "over-budget"


def test_max_cost_stops_within_one_call_and_says_when_it_cannot(mock_server, llmtrace_home):
    server = mock_server()
    env = server_env(server)
    assert run_cli("run", "-q", "--no-cache", "--max-calls", "1", str(AGENTS / "loop_agent.py"), env=env).code == 0
    per_call = [s for s in last_trace(llmtrace_home)[1] if s.kind == "llm" and s.cost][0].cost
    limit = 2.5 * per_call
    r = run_cli("run", "--no-cache", "--max-cost", f"{limit:.10f}", str(AGENTS / "loop_agent.py"), env=env)
    assert r.code == 0 and "stopped after 3 calls" in r.stdout, r.stdout
    trace, _ = last_trace(llmtrace_home)
    assert limit <= trace.totals.cost < limit + per_call

    r = run_cli("run", "--no-cache", "--max-tokens", "60", str(AGENTS / "loop_agent.py"), env=env)
    assert "stopped after" in r.stdout and "--max-tokens 60 reached" in r.stdout

    # A model without a price: the cost limit cannot hold; said once; the call limit still does.
    house = mock_server({"model": "house-model-7"})
    r = run_cli("run", "--no-cache", "--max-cost", "0.01", "--max-calls", "4", str(AGENTS / "loop_agent.py"),
                "--model", "house-model-7", env=server_env(house))
    assert r.code == 0 and "stopped after 4 calls" in r.stdout
    assert r.stderr.count("--max-cost cannot be enforced for calls to") == 1
    r = run_cli("run", "--max-calls", "-1", str(AGENTS / "loop_agent.py"), env=env)
    assert r.code == 2 and "Traceback" not in r.stderr
