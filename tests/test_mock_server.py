"""The scripted server speaks the OpenAI API well enough for the real SDK, and injects faults."""

from __future__ import annotations

import json
import time
import urllib.request

import httpx
import openai
import pytest

from llmtrace.mock import MockServer, Script


def client(server: MockServer, **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0, **kw)


def test_tool_calls_parallel_and_templates(mock_server):
    server = mock_server({"replies": [
        {"when": {"tool_results": 0}, "tool_calls": [{"name": "a", "arguments": {"x": 1}}, {"name": "b", "arguments": {"y": 2}}]},
        {"content": "got {last_tool_result} after {tool_results}"},
    ]})
    c = client(server)
    r = c.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "go"}])
    calls = r.choices[0].message.tool_calls
    assert [(t.function.name, json.loads(t.function.arguments)) for t in calls] == [("a", {"x": 1}), ("b", {"y": 2})]
    assert r.choices[0].finish_reason == "tool_calls"
    msgs = [{"role": "user", "content": "go"}, r.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": calls[0].id, "content": "10"}, {"role": "tool", "tool_call_id": calls[1].id, "content": "20"}]
    r2 = c.chat.completions.create(model="gpt-4o-mini", messages=msgs)
    assert r2.choices[0].message.content == "got 20 after 2"
    assert r2.model == "gpt-4o-mini-2024-07-18"
    assert r2.usage.prompt_tokens > r.usage.prompt_tokens > 0


def test_streaming_with_and_without_usage(mock_server):
    server = mock_server({"replies": [{"content": "one two three"}]})
    c = client(server)
    chunks = list(c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], stream=True))
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks) == "one two three"
    assert all(ch.choices for ch in chunks)
    chunks = list(c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], stream=True,
                                            stream_options={"include_usage": True}))
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0


def test_streamed_tool_call_arguments_reassemble(mock_server):
    server = mock_server({"replies": [{"tool_calls": [{"name": "multiply", "arguments": {"first_int": 243, "second_int": 36}}]}]})
    args = ""
    for ch in client(server).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], stream=True):
        for tc in ch.choices[0].delta.tool_calls or []:
            args += tc.function.arguments or ""
    assert json.loads(args) == {"first_int": 243, "second_int": 36}


def test_fault_sequence_with_retry_after(mock_server):
    server = mock_server({"faults": [{"status": 429, "retry_after": 0.01}, 503, 200]})
    c = client(server)
    with pytest.raises(openai.RateLimitError) as e:
        c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert e.value.response.headers["retry-after"] == "0.01"
    with pytest.raises(openai.InternalServerError):
        c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}]).choices
    assert server.stats.by_status == {429: 1, 503: 1, 200: 1}


def test_insufficient_quota_and_auth_errors(mock_server):
    server = mock_server({"faults": [{"status": 429, "code": "insufficient_quota"}, 401]})
    c = client(server)
    with pytest.raises(openai.RateLimitError) as e:
        c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert e.value.code == "insufficient_quota"
    with pytest.raises(openai.AuthenticationError):
        c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])


def test_timeout_and_dropped_connection(mock_server):
    server = mock_server({"faults": [{"timeout": 2}, "drop"]})
    c = client(server, timeout=0.3)
    t0 = time.perf_counter()
    with pytest.raises(openai.APITimeoutError):
        c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert time.perf_counter() - t0 < 1.5
    with pytest.raises(openai.APIConnectionError):
        client(server).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])


def test_latency_is_injected(mock_server):
    server = mock_server({"latency_ms": 200})
    t0 = time.perf_counter()
    client(server).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert time.perf_counter() - t0 >= 0.2


def test_embeddings_models_and_stats(mock_server):
    server = mock_server()
    c = client(server)
    a, b, d = (c.embeddings.create(model="text-embedding-3-small", input=t).data[0].embedding
               for t in ("what is the weather in Berlin today", "what is the weather in Berlin", "recipe for pancakes"))
    assert a == c.embeddings.create(model="text-embedding-3-small", input="what is the weather in Berlin today").data[0].embedding
    cos = lambda x, y: sum(i * j for i, j in zip(x, y))  # noqa: E731 - vectors are unit length
    assert cos(a, b) > 0.8 > 0.3 > cos(a, d)
    assert [m.id for m in c.models.list().data] == ["gpt-4o-mini-2024-07-18"]
    stats = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{server.port}/_mock/stats").read())
    assert stats["by_path"]["/v1/embeddings"] == 4


def test_binds_loopback_only():
    with pytest.raises(ValueError):
        MockServer(Script(), host="0.0.0.0")
    with MockServer() as s:
        assert s.httpd.server_address[0] == "127.0.0.1"
        assert httpx.get(f"http://127.0.0.1:{s.port}/v1/models").status_code == 200


def test_script_files_json_and_yaml(tmp_path):
    (tmp_path / "s.yaml").write_text("model: m-1\nlatency_ms: 5\nfaults: [429, timeout]\nreplies:\n  - content: hi\n")
    s = Script.load(tmp_path / "s.yaml")
    assert (s.model, s.latency_ms, [f.status for f in s.faults], s.faults[1].timeout) == ("m-1", 5, [429, 200], 30.0)
    (tmp_path / "bad.json").write_text('{"replies": []}')
    with pytest.raises(ValueError):
        Script.load(tmp_path / "bad.json")


def test_stream_cut_midway(mock_server):
    server = mock_server({"faults": [{"cut_after": 2}], "replies": [{"content": "one two three four"}]})
    seen = []
    with pytest.raises(openai.APIConnectionError):
        for ch in client(server).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], stream=True):
            seen.append(ch)
    assert len(seen) == 2
    # The next stream is whole.
    chunks = list(client(server).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "one two three four"


def test_mock_command_serves_until_interrupted(tmp_path):
    import os
    import signal
    import socket
    import subprocess
    import sys

    from conftest import ROOT, default_sigint

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "s.json").write_text('{"model": "m-9", "replies": [{"content": "pong"}]}')
    p = subprocess.Popen([sys.executable, "-m", "llmtrace", "mock", "--script", str(tmp_path / "s.json"), "--port", str(port),
                          "--faults", "503,200"], stderr=subprocess.PIPE, text=True, cwd=str(ROOT), env=os.environ.copy(),
                         preexec_fn=default_sigint)
    try:
        assert f"serving http://127.0.0.1:{port}/v1" in p.stderr.readline()
        c = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=0)
        with pytest.raises(openai.InternalServerError):
            c.chat.completions.create(model="x", messages=[{"role": "user", "content": "ping"}])
        r = c.chat.completions.create(model="x", messages=[{"role": "user", "content": "ping"}])
        assert (r.model, r.choices[0].message.content) == ("m-9", "pong")
    finally:
        p.send_signal(signal.SIGINT)
        p.wait(10)
    assert p.returncode == 0
