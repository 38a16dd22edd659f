"""Faithful, round two (issue 33): what the SDKs' own test suites caught, one small script per item.

Each test runs a script under `python` and under `llmtrace run` against a server of its own (a tiny
stdlib HTTP server that answers from a list, so statuses and headers such as `x-should-retry` and
`retry-after` are exactly as written) and compares what the script printed and what the server saw.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from conftest import HANG, ROOT, last_trace, run_cli

KEY = "sk-test-not-a-real-key-0000"


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | list[bytes] = b""  # a list: sent as those chunks (a stream)


def chat_body(content: str = "hi") -> bytes:
    return json.dumps({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }).encode()


def chunk(delta: dict[str, Any] | None, usage: dict[str, int] | None = None, finish: str | None = None) -> bytes:
    data = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
            "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage is not None:
        data["usage"] = usage
    return b"data: " + json.dumps(data).encode() + b"\n\n"


ERROR = json.dumps({"error": {"message": "scripted failure", "type": "server_error", "code": None}}).encode()


class Server:
    """Answers each request with the next scripted Answer (the last one once the list runs out) and
    keeps what it was sent: path, headers, JSON body."""

    def __init__(self, answers: list[Answer]):
        self.answers = list(answers)
        self.seen: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                server.seen.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                    "body": json.loads(body or b"null")})
                answer = server.answers.pop(0) if len(server.answers) > 1 else server.answers[0]
                chunks = answer.body if isinstance(answer.body, list) else None
                self.send_response_only(answer.status)
                for k, v in answer.headers.items():
                    self.send_header(k, v)
                if chunks is None:
                    self.send_header("content-type", answer.headers.get("content-type", "application/json"))
                    self.send_header("content-length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                else:
                    self.send_header("content-type", "text/event-stream")
                    self.send_header("transfer-encoding", "chunked")
                    self.end_headers()
                    for part in chunks:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                    self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers: list[Server] = []

    def start(answers: list[Answer]) -> Server:
        servers.append(Server(answers))
        return servers[-1]

    yield start
    for s in servers:
        s.stop()


def _env(server: Server, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, "OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": KEY, "PYTHONUNBUFFERED": "1",
            **(extra or {})}


def both(tmp_path: Path, source: str, answers: list[Answer], serve: Any, *run_args: str,
         extra: dict[str, str] | None = None) -> tuple[Any, Server, Any, Server]:
    """(python's result, its server; llmtrace's result, its server): the script run by each against a
    fresh server with the same answers."""
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(source))
    ref_server = serve(answers)
    ref = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=_env(ref_server, extra),
                         timeout=HANG, cwd=str(ROOT))
    traced_server = serve(answers)
    traced = run_cli("run", "-q", *run_args, str(script), env={k: v for k, v in _env(traced_server, extra).items()
                                                             if k not in os.environ or os.environ[k] != v})
    return ref, ref_server, traced, traced_server


def same_output(ref: Any, traced: Any) -> None:
    assert (traced.code, traced.stdout) == (ref.returncode, ref.stdout), (ref.stderr, traced.stderr)


def retry_counts(server: Server) -> list[str | None]:
    return [r["headers"].get("x-stainless-retry-count") for r in server.seen]


# --- 1. the SDK's retry protocol -----------------------------------------------------------------

RETRY_SCRIPT = """
    import logging, sys
    import openai
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(name)s %(message)s")
    for name in ("httpx", "httpx2"):
        logging.getLogger(name).setLevel(logging.WARNING)
    client = openai.OpenAI(max_retries={retries})
    try:
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=[{{"role": "user", "content": "x"}}])
        print("ok", raw.retries_taken, raw.parse().choices[0].message.content)
    except openai.APIStatusError as e:
        print("failed", type(e).__name__, e.status_code)
"""


def _unjittered(out: str) -> str:
    return re.sub(r"in [0-9.]+ seconds", "in … seconds", out)


def _retry_lines(out: str) -> list[str]:
    """The SDK's 'Retrying request' log lines, less the wait (jittered)."""
    return [" ".join(w for w in line.split() if not w.replace(".", "").isdigit()) for line in out.splitlines()
            if "Retrying request" in line]


@pytest.mark.parametrize("answers, retries, expect", [
    # 500 with x-should-retry: false: the SDK gives up at once (llmtrace used to send 5 requests)
    ([Answer(500, {"x-should-retry": "false"}, ERROR), Answer(body=chat_body())], 3, "failed"),
    # 400 with x-should-retry: true: retried (llmtrace used to stop at 1)
    ([Answer(400, {"x-should-retry": "true", "retry-after-ms": "5"}, ERROR)] * 2 + [Answer(body=chat_body())], 3, "ok 2"),
    # retry-after longer than the SDK waits, with max_retries=1: python gives up at once (openai 1.x backs
    # off instead: either way, llmtrace does what python does)
    ([Answer(429, {"retry-after": "3600"}, ERROR), Answer(body=chat_body())], 1, ""),
    # plain 503s with a short retry-after: retried with the count in each request's headers
    ([Answer(503, {"retry-after-ms": "5"}, ERROR)] * 2 + [Answer(body=chat_body())], 3, "ok 2"),
])
def test_retries_follow_the_sdk_protocol(tmp_path, serve, answers, retries, expect):
    ref, ref_server, traced, traced_server = both(tmp_path, RETRY_SCRIPT.format(retries=retries), answers, serve)
    assert ref.stdout.splitlines()[-1].startswith(expect), ref.stdout
    # retries_taken, the error, and the SDK's own "Retrying request" log lines (their waits are jittered)
    assert (traced.code, _unjittered(traced.stdout)) == (ref.returncode, _unjittered(ref.stdout)), traced.stderr
    assert _retry_lines(traced.stdout) == _retry_lines(ref.stdout)
    assert retry_counts(traced_server) == retry_counts(ref_server)  # x-stainless-retry-count: 0, 1, 2 …
    assert len(traced_server.seen) == len(ref_server.seen)


def test_llmtrace_default_budget_goes_through_the_sdk(tmp_path, serve, llmtrace_home):
    # A client left at the SDK's default gets llmtrace's larger budget (4 retries): each attempt still
    # says its number, and the raw response reports the retries taken.
    source = RETRY_SCRIPT.replace("max_retries={retries}", "{retries}").format(retries="")
    answers = [Answer(503, {"retry-after-ms": "5"}, ERROR)] * 3 + [Answer(body=chat_body())]
    ref, ref_server, traced, traced_server = both(tmp_path, source, answers, serve)
    assert ref.stdout.splitlines()[-1] == "failed InternalServerError 503"  # the SDK's 2 retries
    assert traced.stdout.splitlines()[-1] == "ok 3 hi", traced.stderr
    assert retry_counts(traced_server) == ["0", "1", "2", "3"]
    _, spans = last_trace(llmtrace_home)
    [llm] = [s for s in spans if s.kind == "llm"]
    assert llm.attempts == 4 and [a["status"] for a in llm.metadata["attempt_log"]] == [503] * 3


# --- 8. a backoff the script patched is the one used ----------------------------------------------

def test_patched_sdk_backoff_is_used(tmp_path, serve):
    source = """
        from unittest import mock
        import openai
        calls = []
        def fast(self, remaining_retries, options, response_headers=None):
            calls.append(remaining_retries)
            return 0.0
        with mock.patch("openai._base_client.BaseClient._calculate_retry_timeout", fast):
            client = openai.OpenAI(max_retries=3)
            r = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
        print(r.retries_taken, calls)
    """
    answers = [Answer(500, {}, ERROR)] * 3 + [Answer(body=chat_body())]
    ref, ref_server, traced, traced_server = both(tmp_path, source, answers, serve)
    assert ref.stdout == "3 [3, 2, 1]\n"
    same_output(ref, traced)
    assert len(traced_server.seen) == len(ref_server.seen) == 4


# --- 2 and 3. the body is the script's; a usage chunk the server sends is the caller's -----------

STREAM_SCRIPT = """
    import openai
    client = openai.OpenAI()
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}], stream=True))
    print(len(chunks), [c.usage.total_tokens if c.usage else None for c in chunks])
    helper = getattr(client.chat.completions, "stream", None) or client.beta.chat.completions.stream  # openai 1.x: beta
    with helper(model="gpt-4o-mini", messages=[{"role": "user", "content": "y"}]) as s:
        final = s.get_final_completion()
    print(final.choices[0].message.content, final.usage.total_tokens if final.usage else None)
"""


def test_streamed_body_is_the_scripts_and_no_usage_is_made_up(tmp_path, serve, llmtrace_home):
    # A server that knows no stream_options: llmtrace must not add them; with no usage sent the span
    # says none was reported.
    stream = [chunk({"role": "assistant", "content": "he"}), chunk({"content": "llo"}, finish="stop"), b"data: [DONE]\n\n"]
    ref, ref_server, traced, traced_server = both(tmp_path, STREAM_SCRIPT, [Answer(body=stream)], serve)
    same_output(ref, traced)
    assert [r["body"] for r in traced_server.seen] == [r["body"] for r in ref_server.seen]
    assert all("stream_options" not in r["body"] for r in traced_server.seen)
    _, spans = last_trace(llmtrace_home)
    llm = [s for s in spans if s.kind == "llm"]
    assert len(llm) == 2 and all(s.input_tokens is None and s.output_tokens is None for s in llm)


def test_usage_the_server_sends_unasked_reaches_the_caller(tmp_path, serve):
    stream = [chunk({"role": "assistant", "content": "he"}), chunk({"content": "llo"}, finish="stop"),
              chunk(None, usage={"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4}), b"data: [DONE]\n\n"]
    ref, ref_server, traced, traced_server = both(tmp_path, STREAM_SCRIPT, [Answer(body=stream)], serve)
    assert ref.stdout.splitlines()[-1] == "hello 4"
    same_output(ref, traced)
    assert [r["body"] for r in traced_server.seen] == [r["body"] for r in ref_server.seen]


def test_usage_llmtrace_asks_for_is_kept_from_the_caller(tmp_path, serve, llmtrace_home):
    # Where the endpoint is known to accept it (here: listed), llmtrace asks for usage and records it;
    # the caller sees the stream it asked for. (The server answers as OpenAI does when asked.)
    stream = [chunk({"role": "assistant", "content": "he"}), chunk({"content": "llo"}, finish="stop"),
              chunk(None, usage={"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4}), b"data: [DONE]\n\n"]
    plain = [chunk({"role": "assistant", "content": "he"}), chunk({"content": "llo"}, finish="stop"), b"data: [DONE]\n\n"]
    source = STREAM_SCRIPT.split("    helper =")[0]
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(source))
    ref_server = serve([Answer(body=plain)])
    ref = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=_env(ref_server), timeout=HANG)
    server = serve([Answer(body=stream)])
    host = server.base_url.split("/")[2]
    traced = run_cli("run", "-q", str(script), env={"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": KEY,
                                                    "LLMTRACE_USAGE_HOSTS": host})
    same_output(ref, traced)
    assert server.seen[0]["body"]["stream_options"] == {"include_usage": True}
    _, spans = last_trace(llmtrace_home)
    [llm] = [s for s in spans if s.kind == "llm"]
    assert (llm.input_tokens, llm.output_tokens) == (2, 2)


# --- 4. threads see their own context ------------------------------------------------------------

def test_threads_do_not_inherit_the_callers_context(tmp_path, serve, llmtrace_home):
    source = """
        import contextvars, threading
        from concurrent.futures import ThreadPoolExecutor
        import openai
        from langchain_core.runnables import RunnableLambda
        from langchain_core.runnables.config import var_child_runnable_config

        mode = contextvars.ContextVar("mode", default="default")
        seen = []

        def look(where):
            seen.append((where, mode.get(), not var_child_runnable_config.get()))

        def ask(_):
            openai.OpenAI().chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "t"}])

        def work(x):
            mode.set("set in the caller")
            t = threading.Thread(target=lambda: (look("thread"), ask(x)))
            t.start(); t.join()
            with ThreadPoolExecutor(1) as pool:
                pool.submit(look, "pool").result()
                pool.submit(lambda: mode.set("set in the worker")).result()
                pool.submit(look, "pool again").result()  # a worker keeps its own context between tasks
            return x

        RunnableLambda(work).invoke(1)
        print(seen)
    """
    ref, ref_server, traced, traced_server = both(tmp_path, source, [Answer(body=chat_body())], serve)
    assert "'thread', 'default', True" in ref.stdout and "'pool again', 'set in the worker'" in ref.stdout
    same_output(ref, traced)
    # llmtrace's own link still crosses: the call made in the thread hangs under the lambda's run.
    _, spans = last_trace(llmtrace_home)
    [chain] = [s for s in spans if s.kind == "chain"]
    [llm] = [s for s in spans if s.kind == "llm"]
    assert llm.parent_id == chain.id


# --- 5. a stream dropped half-read --------------------------------------------------------------

def test_abandoned_stream_is_cut_short_without_work_in_the_finaliser(tmp_path, serve, llmtrace_home):
    # The garbage collector closes the dropped stream; nothing formats a traceback while it does.
    source = """
        import gc, traceback
        from langchain_openai import ChatOpenAI
        formatted = []
        original = traceback.format_exception
        def counting(*a, **k):
            formatted.append(1)
            return original(*a, **k)
        traceback.format_exception = counting
        gc.disable()
        it = ChatOpenAI(model="gpt-4o-mini").stream("x")
        print(next(it).content)
        cycle = [it]
        cycle.append(cycle)
        del it, cycle
        gc.collect()
        print("formatted", len(formatted))
    """
    stream = [chunk({"role": "assistant", "content": "he"}), chunk({"content": "llo"}, finish="stop"), b"data: [DONE]\n\n"]
    ref, ref_server, traced, traced_server = both(tmp_path, source, [Answer(body=stream)], serve)
    assert ref.stdout.endswith("formatted 0\n"), ref.stdout + ref.stderr
    same_output(ref, traced)
    _, spans = last_trace(llmtrace_home)
    [llm] = [s for s in spans if s.kind == "llm"]
    assert llm.status == "ok" and llm.metadata.get("cut_short") is True and "traceback" not in llm.metadata


# --- 6. a replayed answer looks like the recorded one ----------------------------------------------

def test_replayed_answer_has_the_live_headers_and_request(tmp_path, serve, llmtrace_home):
    source = """
        import openai
        raw = openai.OpenAI(max_retries=3).chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
        sent = raw.http_request.headers
        print(raw.retries_taken, sorted(k for k in raw.headers if k not in ("date", "server")))
        print(sorted((k, v) for k, v in sent.items() if k.startswith("x-stainless") and k != "x-stainless-read-timeout"))
        print(raw.parse().choices[0].message.content)
    """
    answers = [Answer(body=chat_body(), headers={"x-request-id": "req_1", "openai-processing-ms": "7"})]
    ref, ref_server, live, live_server = both(tmp_path, source, answers, serve)
    same_output(ref, live)
    script = tmp_path / "script.py"
    replayed = run_cli("run", "-q", str(script), env={"OPENAI_BASE_URL": live_server.base_url, "OPENAI_API_KEY": KEY})
    assert len(live_server.seen) == 1  # the second run was answered from the cache
    assert (replayed.code, replayed.stdout) == (0, ref.stdout)
    assert "x-llmtrace-cache" not in replayed.stdout
    _, spans = last_trace(llmtrace_home)
    assert [s.cache_hit for s in spans if s.kind == "llm"] == ["exact"]


# --- 7. one large server-sent event ---------------------------------------------------------------

def test_large_event_streams_through_whole(tmp_path, serve):
    big = "x" * (4 << 20)
    event = chunk({"role": "assistant", "content": big}, finish="stop")
    parts = [event[i:i + 16384] for i in range(0, len(event), 16384)] + [b"data: [DONE]\n\n"]
    source = """
        import openai
        chunks = list(openai.OpenAI().chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}], stream=True))
        print(len(chunks), sum(len(c.choices[0].delta.content or "") for c in chunks if c.choices))
    """
    ref, ref_server, traced, traced_server = both(tmp_path, source, [Answer(body=parts)], serve)
    assert ref.stdout == f"1 {4 << 20}\n"
    same_output(ref, traced)


def test_event_splitting_searches_each_byte_a_bounded_number_of_times(monkeypatch):
    # The work, not the time: a 2 MiB event arriving in 1 KiB chunks is searched for its end in
    # bytes proportional to its size (the old tee re-scanned the whole pending buffer on every chunk).
    from llmtrace.capture import streams

    searched = []
    ends = streams._event_ends

    def counting(buf, pos=0):
        searched.append(len(buf) - pos)  # each separator's search from pos reads each byte at most once
        return ends(buf, pos)

    monkeypatch.setattr(streams, "_event_ends", counting)
    body = b"data: " + b"y" * (2 << 20) + b"\n\ndata: [DONE]\r\n\r\n"
    splitter = streams.EventSplitter()
    events = [e for i in range(0, len(body), 1024) for e in splitter.feed(body[i:i + 1024])]
    assert events == [body[: (2 << 20) + 8], b"data: [DONE]\r\n\r\n"] and splitter.rest() == b""
    assert sum(searched) < 2 * len(body)
    assert streams.split_events(b"a\n\nb\r\n\r\nc\n\r\n\r\nd") == ([b"a\n\n", b"b\r\n\r\n", b"c\n\r\n\r\n"], b"d")
