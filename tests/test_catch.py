"""Behaviours a one-line bug once broke without any default test noticing (issue 39's audit), each held
here through the real path: real scripts, the scripted server over HTTP, the store on disk.

- identical requests on a re-run get their recorded answers in order (the occurrence in the cache key);
- `replay` of a trace with repeated requests gives each its own recorded answer (the "already used" check);
- span error messages are redacted on the way to the store, `export -o` files and OTLP payloads;
- a `retry-after` in seconds is honoured by llmtrace's retries, not only `retry-after-ms`.
"""

from __future__ import annotations

import json
import os

import pytest

from conftest import AGENTS, last_trace, run_cli, server_env

THREE_ANSWERS = {"replies": [{"samples": ["first answer", "second answer", "third answer"]}]}
SAME_THREE = ("same question", "same question", "same question")


def test_identical_requests_on_a_rerun_get_their_answers_in_order(llmtrace_home, mock_server):
    server = mock_server(THREE_ANSWERS)
    first = run_cli("run", str(AGENTS / "calls.py"), *SAME_THREE, env=server_env(server))
    assert first.code == 0, first.stderr
    assert first.stdout.splitlines() == ["first answer", "second answer", "third answer"]
    assert server.stats.requests == 3
    # The server starts its samples again at "first answer" (same address: the cache key holds the base
    # URL): only the cache can answer these three in order.
    server.reset()
    second = run_cli("run", str(AGENTS / "calls.py"), *SAME_THREE, env=server_env(server))
    assert second.code == 0, second.stderr
    assert second.stdout == first.stdout
    assert server.stats.requests == 0
    _, spans = last_trace(llmtrace_home)
    assert [s.cache_hit for s in spans if s.kind == "llm"] == ["exact"] * 3


def _run_clean(*args):
    """run_cli with no provider settings: a replay that reached for the network would fail."""
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith(("OPENAI_", "ANTHROPIC_"))}
    try:
        return run_cli(*args)
    finally:
        os.environ.update(saved)


def test_replay_of_repeated_requests_gives_each_its_own_answer(llmtrace_home, mock_server):
    server = mock_server(THREE_ANSWERS)
    live = run_cli("run", "-q", "--no-cache", str(AGENTS / "calls.py"), *SAME_THREE, env=server_env(server))
    assert live.code == 0 and live.stdout.splitlines() == ["first answer", "second answer", "third answer"]
    original, _ = last_trace(llmtrace_home)
    r = _run_clean("replay", original.id)
    assert r.code == 0, r.stderr
    assert r.stdout == live.stdout
    assert "3 of 3 recorded calls answered from the recording" in r.stderr
    # A fourth identical request has no recorded answer left: the divergence, not the first answer again.
    r = _run_clean("replay", original.id, "--", *SAME_THREE, "same question")
    assert r.code == 1, r.stderr
    assert r.stdout.splitlines() == ["first answer", "second answer", "third answer"]
    assert "replay diverged at call 4" in r.stderr and "the recording has no more calls (it holds 3)" in r.stderr


# --- redaction on the error path --------------------------------------------------------------------

KEY = "sk-proj-ERRORPATHtestKEY0123456789abcdefXYZ"
TOKEN = "svc-Recognisable-Token-Value-4242-tail"


def _assert_no_secret(data: bytes, where: str) -> None:
    for secret in (KEY, TOKEN, KEY[8:30], TOKEN[4:24]):
        assert secret.encode() not in data, f"{secret!r} found in {where}"


def _all_bytes(home) -> bytes:
    return b"".join(p.read_bytes() for p in home.rglob("*") if p.is_file())


def _failing_run(home, mock_server, receiver):
    """fails_with_secrets.py under `llmtrace run --otlp` (live spans to `receiver`); its trace and spans."""
    server = mock_server()
    env = {**server_env(server, key=KEY), "SERVICE_TOKEN": TOKEN}
    r = run_cli("run", "--otlp", receiver.url, str(AGENTS / "fails_with_secrets.py"), env=env)
    assert r.code == 1, r.stderr
    assert r.stdout.splitlines() == ["the tool failed", "the chain failed"]
    return last_trace(home)


def test_error_messages_are_redacted_in_the_store_exports_and_otlp(llmtrace_home, mock_server, otlp_collector, tmp_path):
    trace, spans = _failing_run(llmtrace_home, mock_server, otlp_collector)
    failed = {s.kind: s for s in spans if s.status == "error"}
    assert failed["tool"].error_message == "the service refused key [REDACTED] (token [REDACTED]) for weather"
    assert failed["chain"].error_message.startswith("rejected ") and "signed with [REDACTED]" in failed["chain"].error_message
    assert trace.status == "error" and "[REDACTED]" in trace.error
    data = _all_bytes(llmtrace_home)
    assert b"the service refused key" in data  # the messages themselves are there, only the secrets are not
    _assert_no_secret(data, "the llmtrace home")

    out = tmp_path / "exported.json"
    assert run_cli("export", "last", "-o", str(out)).code == 0
    exported = out.read_bytes()
    assert b"the service refused key [REDACTED]" in exported
    _assert_no_secret(exported, "the export -o file")
    assert run_cli("export", "last", "--format", "jsonl", "-o", str(out)).code == 0
    _assert_no_secret(out.read_bytes(), "the jsonl export")

    otlp_collector.requests.clear()
    sent = run_cli("export", "last", "--otlp", otlp_collector.url)
    assert sent.code == 0, sent.stderr
    batch = otlp_collector.bodies()
    assert b"the service refused key" in batch and {r.path for r in otlp_collector.requests} == {"/v1/traces"}
    _assert_no_secret(batch, "the OTLP export")


def test_live_otlp_spans_are_redacted(llmtrace_home, mock_server, otlp_collector):
    _failing_run(llmtrace_home, mock_server, otlp_collector)
    assert otlp_collector.requests, "the live OTLP exporter sent nothing"
    live = otlp_collector.bodies()
    assert b"the service refused key" in live
    _assert_no_secret(live, "the live OTLP payloads")


# --- retry-after in seconds ---------------------------------------------------------------------------


def test_retry_after_in_seconds_is_honoured(llmtrace_home, mock_server):
    # The backoff alone would wait at most LLMTRACE_RETRY_BASE_DELAY (0.01 s) before the second attempt;
    # a retry-after of 0 is not a wait the SDK honours: it backs off instead (its second wait: twice the first).
    server = mock_server({"faults": [{"status": 429, "retry_after": 0.05}, {"status": 503, "retry_after": 0}, 200]})
    r = run_cli("run", "--no-cache", str(AGENTS / "one_call.py"), "hello",
                env={**server_env(server), "LLMTRACE_RETRY_BASE_DELAY": "0.01"})
    assert r.code == 0, r.stderr
    assert server.stats.requests == 3
    _, spans = last_trace(llmtrace_home)
    llm = next(s for s in spans if s.kind == "llm")
    assert llm.attempts == 3
    log = llm.metadata["attempt_log"]
    assert [a["status"] for a in log] == [429, 503] and log[0]["wait_s"] == 0.05 and 0 < log[1]["wait_s"] <= 0.02


def test_exported_file_is_json_with_the_trace(llmtrace_home, mock_server, tmp_path):
    """The export -o file checked above is a document of the trace (not an empty or partial file)."""
    server = mock_server(THREE_ANSWERS)
    assert run_cli("run", "-q", str(AGENTS / "calls.py"), "a question", env=server_env(server)).code == 0
    out = tmp_path / "one.json"
    assert run_cli("export", "last", "-o", str(out)).code == 0
    doc = json.loads(out.read_text())
    trace, spans = last_trace(llmtrace_home)
    assert doc["trace"]["id"] == trace.id and len(doc["spans"]) == len(spans)
    assert out.stat().st_mode & 0o077 == 0  # it holds prompts: owner-only
