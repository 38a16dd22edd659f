"""Disk cache and retries under `llmtrace run`, through real HTTP to the scripted server."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import (
    AGENTS,
    CACHE_KEY,
    HANG,
    MATH_SCRIPT,
    ROOT,
    SAMPLES,
    last_trace,
    run_cli,
    server_env,
    use_home,
)

FAST = {"LLMTRACE_RETRY_BASE_DELAY": "0.01"}


def _chat_requests(server) -> int:
    return server.stats.by_path.get("/v1/chat/completions", 0)


def test_math_agent_second_run_makes_no_requests(math_runs):
    # Streamed (classic) and plain (LangGraph) calls. Both agents send the same requests (only
    # `stream` differs, which the key ignores): each ran in a home and cache of its own, or the
    # second script's cold run would already be warm.
    for script, runs in math_runs.items():
        cold, warm = runs.cold, runs.warm
        assert cold.result.code == 0 and cold.stats["by_path"].get("/v1/chat/completions") == 4
        assert warm.result.code == 0, warm.result.stderr
        assert warm.result.stdout == cold.result.stdout and "76527504" in warm.result.stdout
        assert warm.stats["requests"] == 0
        trace, spans = warm.trace, warm.spans
        llm = [s for s in spans if s.kind == "llm"]
        assert [s.cache_hit for s in llm] == ["exact"] * 4
        assert all(s.cost == 0 and s.cost_saved and s.input_tokens for s in llm)
        assert trace.totals.cost == 0 and trace.totals.cache_hits == 4
        assert abs(trace.totals.cost_saved - cold.trace.totals.cost) < 1e-12
        assert trace.totals.input_tokens == cold.trace.totals.input_tokens
        assert "4 replayed from the cache (saved $0.000194)" in warm.result.stderr
        assert [t.outputs for t in spans if t.kind == "tool"] == [243, 8748, 76527504] or script.endswith("graph.py")


def test_lcel_paths_cached_and_streams_stay_streams(lcel_runs):
    first, second = lcel_runs.cold, lcel_runs.warm
    assert first.result.code == 0 and first.stats["requests"] == 5
    assert second.result.code == 0 and second.result.stdout == first.result.stdout
    assert second.stats["requests"] == 0  # invoke, stream, batch (2) and ainvoke all answered from the cache
    llm = [s for s in second.spans if s.kind == "llm"]
    assert len(llm) == 5 and all(s.cache_hit == "exact" for s in llm)
    assert sum(s.streamed for s in llm) == 1


def test_bare_sdk_stream_replayed_without_usage_chunk(bare_runs):
    assert bare_runs.cold.result.code == 0
    again = bare_runs.warm
    assert again.result.code == 0, again.result.stderr  # chunk.choices[0] on every chunk: no usage-only chunk leaked
    assert "stream: This is a scripted reply" in again.result.stdout and again.stats["requests"] == 0


def test_key_covers_params_and_no_cache_flag(llmtrace_home, mock_server):
    server, other = mock_server(), mock_server()
    env = {**server_env(server), "OTHER_BASE_URL": other.base_url}

    def run(*calls: str, flags: tuple[str, ...] = ()) -> list:
        """One run of several calls; what answered each: "exact" (the cache) or None (the server)."""
        r = run_cli("run", *flags, str(AGENTS / "calls.py"), *calls, env=env)
        assert r.code == 0, r.stderr
        _, spans = last_trace(llmtrace_home)
        return [(s.cache_hit, s.streamed) for s in spans if s.kind == "llm"]

    assert run("hello") == [(None, False)]
    assert _chat_requests(server) == 1
    # Within one run the n-th identical request replays the n-th recorded answer, so each call that
    # differs from "hello" in one parameter comes first of its kind: a key that ignored the
    # parameter would answer it from the cache. "hello" itself is answered from the first run.
    assert run("hello@temp=0.7", "hello@stream", "hello") == [(None, False), (None, True), ("exact", False)]
    assert _chat_requests(server) == 3  # another temperature is another answer; a stream is recorded as a stream
    # The stream replays its own chunks; another endpoint (same request) is another answer.
    assert run("hello@stream", "hello@other") == [("exact", True), (None, False)]
    assert _chat_requests(server) == 3 and _chat_requests(other) == 1
    assert run("hello", flags=("--no-cache",)) == [(None, False)]
    assert _chat_requests(server) == 4


def test_ttl_expires_entries(llmtrace_home, mock_server):
    server = mock_server()
    env = server_env(server)
    for _ in range(2):
        assert run_cli("run", "--cache-ttl", "1h", str(AGENTS / "one_call.py"), "ttl", env=env).code == 0
    assert _chat_requests(server) == 1
    # Two hours later (the cache's clock moved, not the test's): the entry has expired.
    later = {**env, "LLMTRACE_CLOCK_OFFSET_S": "7200"}
    assert run_cli("run", "--cache-ttl", "1h", str(AGENTS / "one_call.py"), "ttl", env=later).code == 0
    assert _chat_requests(server) == 2
    # Without a TTL the same (re-recorded) entry is answered whatever the clock says.
    assert run_cli("run", str(AGENTS / "one_call.py"), "ttl", env=later).code == 0
    assert _chat_requests(server) == 2


def test_cache_holds_no_api_key(math_runs):
    runs = math_runs["math_agent.py"]  # sent CACHE_KEY as its API key
    assert runs.cold.result.code == 0
    cache_bytes = b"".join(p.read_bytes() for p in (runs.warm.home / "cache").rglob("*") if p.is_file())
    assert len(cache_bytes) > 1000 and CACHE_KEY.encode() not in cache_bytes and CACHE_KEY[8:24].encode() not in cache_bytes


def test_two_runs_share_a_cache_at_once(llmtrace_home, mock_server):
    server = mock_server(MATH_SCRIPT)
    env = {**os.environ, **server_env(server)}
    procs = [subprocess.Popen([sys.executable, "-m", "llmtrace", "run", "-q", str(SAMPLES / "math_agent.py")], env=env,
                              cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=HANG) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert all("76527504" in o for o, _ in outs)
    server.stats.reset()
    assert run_cli("run", str(SAMPLES / "math_agent.py"), env=server_env(server)).code == 0
    assert server.stats.requests == 0


def test_cache_stats_and_clear(llmtrace_home, math_runs):
    use_home(math_runs["math_agent.py"].warm, llmtrace_home)  # the math agent run twice against one server
    import json

    stats = json.loads(run_cli("cache", "stats", "--json").stdout)
    assert stats["entries"] == 4 and stats["bytes"] > 0 and stats["hits"] == 4 and stats["saved"] > 0
    assert run_cli("cache", "clear", "--older-than", "1h").code == 0
    assert json.loads(run_cli("cache", "stats", "--json").stdout)["entries"] == 4
    r = run_cli("cache", "clear")
    assert r.code == 0 and "removed 4" in r.stderr
    assert json.loads(run_cli("cache", "stats", "--json").stdout)["entries"] == 0


def test_semantic_cache(llmtrace_home, mock_server):
    server = mock_server({"replies": [{"content": "answer to: {last_user}"}]})
    env = server_env(server)

    def ask(prompt: str) -> str:
        r = run_cli("run", "--semantic-cache", str(AGENTS / "one_call.py"), prompt, env=env)
        assert r.code == 0, r.stderr
        return r.stdout.strip()

    assert ask("What is the weather in Berlin today") == "answer to: What is the weather in Berlin today"
    assert ask("what is the weather in Berlin today?") == "answer to: What is the weather in Berlin today"
    _, spans = last_trace(llmtrace_home)
    hit = next(s for s in spans if s.kind == "llm")
    assert hit.cache_hit == "semantic" and hit.metadata["similarity"] >= 0.95
    assert ask("Give me a recipe for pancakes") == "answer to: Give me a recipe for pancakes"
    assert _chat_requests(server) == 2 and server.stats.by_path["/v1/embeddings"] == 3
    # Off by default: the close prompt goes to the server.
    r = run_cli("run", str(AGENTS / "one_call.py"), "what is the weather in Berlin today!", env=env)
    assert r.code == 0 and _chat_requests(server) == 3


def _fault_run(mock_server, faults, *args, env_extra=None, prompt="hello", args_after=()):
    server = mock_server({"faults": faults})
    env = {**server_env(server), **FAST, **(env_extra or {})}
    r = run_cli("run", "--no-cache", *args, str(AGENTS / "one_call.py"), prompt, *args_after, env=env)
    return server, r


def test_retry_429_503_then_success(llmtrace_home, mock_server):
    server, r = _fault_run(mock_server, [{"status": 429, "retry_after_ms": 20}, 503, 200])
    assert r.code == 0, r.stderr
    assert server.stats.requests == 3 and "2 retries" in r.stderr
    trace, spans = last_trace(llmtrace_home)
    llm = next(s for s in spans if s.kind == "llm")
    assert llm.attempts == 3 and llm.status == "ok" and trace.totals.retries == 2
    log = llm.metadata["attempt_log"]
    assert [(a["attempt"], a["status"]) for a in log] == [(1, 429), (2, 503)]
    assert log[0]["wait_s"] == 0.02  # the server's retry-after-ms was honoured
    assert "3 attempts" in run_cli("show", "last").stdout


def test_retry_on_streamed_call(llmtrace_home, mock_server):
    # Before the first chunk, a stream is retried like any call (here within --retries 2).
    server, r = _fault_run(mock_server, [502, 200], "--retries", "2", args_after=("--stream",))
    assert r.code == 0, r.stderr
    assert server.stats.requests == 2 and "This is a scripted reply" in r.stdout
    _, spans = last_trace(llmtrace_home)
    llm = next(s for s in spans if s.kind == "llm")
    assert llm.streamed and llm.attempts == 2 and llm.status == "ok"


def test_401_is_not_retried(llmtrace_home, mock_server):
    server, r = _fault_run(mock_server, [401])
    assert r.code == 1 and server.stats.requests == 1
    assert "AuthenticationError" in r.stderr
    trace, spans = last_trace(llmtrace_home)
    llm = next(s for s in spans if s.kind == "llm")
    assert llm.status == "error" and llm.error_type.endswith("AuthenticationError") and llm.attempts == 1
    assert trace.status == "error" and "AuthenticationError" in trace.error


def test_budget_of_five_attempts(llmtrace_home, mock_server):
    server, r = _fault_run(mock_server, [429] * 6)
    assert r.code == 1 and "RateLimitError" in r.stderr
    assert server.stats.requests == 5  # not 15: the SDK's own retries are off while llmtrace retries
    _, spans = last_trace(llmtrace_home)
    assert next(s for s in spans if s.kind == "llm").attempts == 5


def test_retries_zero_means_one_attempt(llmtrace_home, mock_server):
    server, r = _fault_run(mock_server, [503, 200], "--retries", "0")
    assert r.code == 1 and server.stats.requests == 1


def test_timeout_is_retried(llmtrace_home, mock_server):
    # The server keeps the first request unanswered for 120 s, far past the client's 3 s timeout;
    # the retry is answered at once, far within it: a busy machine cannot turn one into the other.
    server, r = _fault_run(mock_server, [{"timeout": 120}, 200], env_extra={"CALL_TIMEOUT": "3"})
    assert r.code == 0, r.stderr
    _, spans = last_trace(llmtrace_home)
    llm = next(s for s in spans if s.kind == "llm")
    assert llm.attempts == 2 and "APITimeoutError" in llm.metadata["attempt_log"][0]["error"]


def test_dropped_connection_is_retried(llmtrace_home, mock_server):
    server, r = _fault_run(mock_server, ["drop", 200])
    assert r.code == 0, r.stderr
    assert server.stats.requests == 2


def test_insufficient_quota_is_retried_as_the_sdk_does(llmtrace_home, mock_server):
    # Which answers are retried is the SDK's rule (a 429 is, whatever its error code says): the server
    # sees what it sees under python.
    server, r = _fault_run(mock_server, [{"status": 429, "code": "insufficient_quota"}, 200])
    assert r.code == 0 and server.stats.requests == 2
    _, spans = last_trace(llmtrace_home)
    assert next(s for s in spans if s.kind == "llm").metadata["attempt_log"][0]["retryable"] is True


def test_stream_broken_after_first_chunk_is_not_retried(llmtrace_home, mock_server):
    server = mock_server({"faults": [{"cut_after": 2}, 200]})
    r = run_cli("run", "--no-cache", str(AGENTS / "one_call.py"), "hello", "--stream", env={**server_env(server), **FAST})
    # The error as the script sees it under python: newer openai/langchain-openai wrap the cut in an
    # APIConnectionError subclass, older ones (the 0.3 line) let httpx's RemoteProtocolError through.
    assert r.code == 1 and ("APIConnectionError" in r.stderr or "RemoteProtocolError" in r.stderr), r.stderr
    assert server.stats.requests == 1  # the stream had begun: retrying would repeat what the caller saw
    _, spans = last_trace(llmtrace_home)
    llm = next(s for s in spans if s.kind == "llm")
    assert llm.status == "error" and llm.attempts == 1 and llm.streamed
    # (Before the first chunk, a stream is retried like any call: test_retry_on_streamed_call.)


def _budget_run(mock_server, budget: str, faults: list, *cli: str):
    server = mock_server({"faults": faults, "replies": [{"when": {"structured": True}, "json": {"value": 7}},
                                                       {"content": "warm answer"}]})
    env = {**server_env(server), **FAST}
    return run_cli("run", "--no-cache", *cli, str(AGENTS / "retry_budgets.py"), budget, env=env), server


def test_structured_output_after_a_429_succeeds_as_under_python(llmtrace_home, mock_server):
    # One plain call, then with_structured_output (chat.completions.parse) meets one 429: the SDK's
    # default retries would absorb it under python; llmtrace's policy must too, on every endpoint.
    r, server = _budget_run(mock_server, "default", [200, 429, 200])
    assert r.code == 0 and r.stdout.splitlines()[-1] == "7", r.stdout + r.stderr
    _, spans = last_trace(llmtrace_home)
    parse = [s for s in spans if s.kind == "llm"][-1]
    assert parse.attempts == 2 and parse.request["response_format"]["type"] == "json_schema"


def test_explicit_max_retries_zero_is_kept(llmtrace_home, mock_server):
    # ChatOpenAI(max_retries=0): one attempt, as the script asked, though llmtrace retries by default.
    r, server = _budget_run(mock_server, "0", [503, 200, 200])
    assert r.code == 2 and r.stdout.startswith("failed: ")
    assert server.stats.requests == 1
    plain_server = mock_server({"faults": [503, 200, 200]})
    plain = subprocess.run([sys.executable, str(AGENTS / "retry_budgets.py"), "0"], capture_output=True, text=True,
                           env={**os.environ, **server_env(plain_server)}, cwd=str(ROOT))
    assert (plain.returncode, plain.stdout, plain_server.stats.requests) == (r.code, r.stdout, 1)


def test_explicit_max_retries_five_is_kept(llmtrace_home, mock_server):
    # max_retries=5 against --retries 1: the script's budget wins (6 attempts), retried by llmtrace.
    r, server = _budget_run(mock_server, "5", [503] * 5 + [200, 200], "--retries", "1")
    assert r.code == 0, r.stdout + r.stderr
    assert server.stats.requests == 7
    _, spans = last_trace(llmtrace_home)
    assert [s.attempts for s in spans if s.kind == "llm"] == [6, 1]


def test_the_sdk_request_options_are_left_as_they_were(llmtrace_home, mock_server):
    # llmtrace turns the SDK's retries off on a request's options while it sends (its own retries
    # take over) and puts them back after: a script that keeps its options sees no change.
    server = mock_server({"faults": [503, 200, 200, 200, 200]})
    r = run_cli("run", "--no-cache", str(AGENTS / "own_options.py"), env={**server_env(server), **FAST})
    plain_server = mock_server({"faults": [503, 200, 200, 200, 200]})
    plain = subprocess.run([sys.executable, str(AGENTS / "own_options.py")], capture_output=True, text=True,
                           env={**os.environ, **server_env(plain_server), **FAST}, cwd=str(ROOT))
    assert plain.returncode == 0, plain.stderr
    assert (r.code, r.stdout) == (0, plain.stdout), r.stderr
    lines = [line.split("|") for line in r.stdout.splitlines()]
    assert [line[2] for line in lines] == ["['json_data', 'method', 'url']"] * 2 + [
        "['json_data', 'max_retries', 'method', 'url']"] * 2
    assert [line[1] for line in lines[2:]] == ["3", "3"]
    _, spans = last_trace(llmtrace_home)
    assert [s.attempts for s in spans if s.kind == "llm"] == [2, 1, 1, 1]  # the 503 retried, by llmtrace
