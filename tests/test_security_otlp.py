"""What leaves for an OTLP collector: redacted as the store is (live and batch), never sent on to
another host by a redirect, and never waiting on a slow collector past one deadline per request.
Real OTLP/HTTP receivers on 127.0.0.1; a real run of a script through the scripted server."""

from __future__ import annotations

import threading

import pytest

from collector import Collector
from conftest import AGENTS, last_trace, run_cli, server_env

pytest.importorskip("opentelemetry.proto.collector.trace.v1.trace_service_pb2")

KEY = "sk-proj-RECOGNISABLEtestKEY1234567890abcdef"
IN_CODE = "another-Recognisable-Secret-987654321-tail-Z9"
TOKEN = "svc-token-Q7r2Lm9xWv4Tz8Kp3Hn6"
PASSWORD = "hunter2-Correct-Horse-Battery-Staple"
SECRETS = (KEY, IN_CODE, TOKEN, PASSWORD, KEY[10:30], IN_CODE[8:30])


@pytest.fixture
def collectors():
    made: list[Collector] = []

    def make(answer=None) -> Collector:
        made.append(Collector(answer))
        return made[-1]

    yield make
    for c in made:
        c.close()


def _secret_run(mock_server, *args: str):
    server = mock_server({"replies": [{"content": "ok then"}]})
    env = {**server_env(server, key=KEY), "SECOND_PART": IN_CODE[: -len("-tail-Z9")], "SERVICE_TOKEN": TOKEN,
           "DB_PASSWORD": PASSWORD}
    r = run_cli("run", *args, str(AGENTS / "secret_tools_agent.py"), env=env)
    assert r.code == 0, r.stderr
    assert "connect failed, as planned" in r.stdout
    return r


def _assert_clean(data: bytes, where: str) -> None:
    assert len(data) > 2_000, f"{where}: too little reached the collector to tell"
    for secret in SECRETS:
        assert secret.encode() not in data, f"{secret!r} reached the collector ({where})"
    assert b"[REDACTED]" in data


def test_no_secret_reaches_the_collector_live_or_batch(llmtrace_home, mock_server, collectors):
    live = collectors()
    _secret_run(mock_server, "--otlp", live.url)
    trace, spans = last_trace(llmtrace_home)
    assert trace.status == "ok" and len([s for s in spans if s.kind == "tool"]) == 3
    sent = live.spans()
    assert len(sent) == len(spans) + 1  # every span and the run's root: redaction lost none
    assert any(s.status.message and "[REDACTED]" in s.status.message for s in sent)  # the error, redacted
    _assert_clean(live.bodies(), "run --otlp")
    batch = collectors()
    r = run_cli("export", "last", "--otlp", batch.url)
    assert r.code == 0, r.stderr
    _assert_clean(batch.bodies(), "export --otlp")
    assert len(batch.spans()) == len(sent)


def _redirect_to(url: str):
    def answer(handler) -> bool:
        handler.send_response(302)
        handler.send_header("Location", url + "/v1/traces")
        handler.send_header("Content-Length", "0")
        handler.end_headers()
        return True
    return answer


def test_a_redirect_to_another_host_is_not_followed(llmtrace_home, mock_server, collectors):
    _secret_run(mock_server)
    elsewhere = collectors()
    redirecting = collectors(_redirect_to(elsewhere.url))
    headers = {"OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer%20collector-credential-123456,x-api-key=team-key-7890"}
    r = run_cli("export", "last", "--otlp", redirecting.url, env=headers)
    assert r.code == 5 and "redirects to another host" in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert len(redirecting.requests) == 1 and redirecting.requests[0][2]["authorization"].endswith("123456")
    assert elsewhere.requests == []  # neither the credentials nor the spans went there


def test_a_redirect_within_the_endpoint_is_followed(llmtrace_home, mock_server, collectors):
    _secret_run(mock_server)

    def answer(handler) -> bool:
        if handler.path != "/v1/traces":
            return False
        handler.send_response(307)
        handler.send_header("Location", "/v2/traces")
        handler.send_header("Content-Length", "0")
        handler.end_headers()
        return True

    moved = collectors(answer)
    r = run_cli("export", "last", "--otlp", moved.url, env={"OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=team-key-7890"})
    assert r.code == 0, r.stderr
    assert [(m, p) for m, p, _, _ in moved.requests] == [("POST", "/v1/traces"), ("POST", "/v2/traces")]
    assert moved.requests[1][2]["x-api-key"] == "team-key-7890" and len(moved.spans()) > 5


def test_a_trickling_collector_is_given_up_at_the_deadline(llmtrace_home, mock_server, collectors):
    _secret_run(mock_server)
    done = threading.Event()

    def trickle(handler) -> bool:
        # A valid answer, one byte at a time: each read of the client gets a byte long before any
        # per-read timeout, so only an overall deadline ends the request. Stops when the test ends.
        wire = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 100000\r\n\r\n" + b"\0" * 100_000
        for i in range(len(wire)):
            if done.wait(0.2):
                return True
            try:
                handler.wfile.write(wire[i:i + 1])
                handler.wfile.flush()
            except OSError:
                return True
        return True

    slow = collectors(trickle)
    try:
        r = run_cli("export", "last", "--otlp", slow.url, env={"OTEL_EXPORTER_OTLP_TIMEOUT": "1500"}, timeout=120)
    finally:
        done.set()
    assert r.code == 5 and "did not answer within 1.5s" in r.stderr and r.stderr.count("\n") == 1, r.stderr
