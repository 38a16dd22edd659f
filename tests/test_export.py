"""Export: JSON documents round-trip; OTLP/HTTP protobuf reaches a real otlp_collector with GenAI attributes."""

from __future__ import annotations

import json
import socket

import pytest

from collector import attributes
from conftest import MATH_SCRIPT, SAMPLES, last_trace, run_cli, server_env, skip_unless_ci, use_home

from llmtrace.model import Span

try:
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2  # noqa: F401 - the exporter needs it
except ImportError:
    skip_unless_ci("opentelemetry-proto is not installed (the `otel` and `test` extras)", module=True)


def _math_home(math_runs, home):
    """The store after `llmtrace run --tag team=core sample_agents/math_agent.py` (run once per worker)."""
    return use_home(math_runs["math_agent.py"].cold, home)


def _math_run(llmtrace_home, mock_server, *extra, env=None):
    server = mock_server(MATH_SCRIPT)
    r = run_cli("run", *extra, str(SAMPLES / "math_agent.py"), env={**server_env(server), **(env or {})})
    assert r.code == 0, r.stderr
    return r


def _check_math_spans(spans, trace):
    by_id = {s.span_id: s for s in spans}
    assert len(spans) == len(trace[1]) + 1  # every recorded span and the run's root
    assert len({s.trace_id for s in spans}) == 1 and len(spans[0].trace_id) == 16
    assert spans[0].trace_id.hex() == trace[0].id.replace("-", "")
    roots = [s for s in spans if not s.parent_span_id]
    assert len(roots) == 1 and roots[0].name == "invoke_agent math_agent.py"
    assert all(s.parent_span_id in by_id for s in spans if s.parent_span_id)  # no dangling parent
    assert all(len(s.span_id) == 8 for s in spans)
    chats = [s for s in spans if attributes(s).get("gen_ai.operation.name") == "chat"]
    tools = [s for s in spans if attributes(s).get("gen_ai.operation.name") == "execute_tool"]
    assert len(chats) == 4 and len(tools) == 3
    a = attributes(chats[0])
    assert chats[0].name == "chat gpt-4o-mini" and chats[0].kind == chats[0].SPAN_KIND_CLIENT
    assert a["gen_ai.provider.name"] == "openai" and a["gen_ai.request.model"] == "gpt-4o-mini"
    assert a["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
    assert a["gen_ai.response.finish_reasons"] == ["tool_calls"] and a["llmtrace.cost_usd"] > 0
    messages = json.loads(a["gen_ai.input.messages"])  # the GenAI schema: roles, and content as parts
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[1]["parts"][0]["type"] == "text" and messages[1]["parts"][0]["content"].startswith("Take 3 to the fifth power")
    assert json.loads(a["gen_ai.output.messages"]) == [{"role": "assistant", "finish_reason": "tool_call", "parts": [
        {"type": "tool_call", "id": json.loads(a["gen_ai.output.messages"])[0]["parts"][0]["id"], "name": "exponentiate",
         "arguments": {"base": 3, "exponent": 5}}]}]
    assert [t["name"] for t in json.loads(a["gen_ai.tool.definitions"])] == ["multiply", "exponentiate"]
    assert a["openinference.span.kind"] == "LLM" and a["llm.model_name"] == "gpt-4o-mini-2024-07-18"
    assert [(attributes(t)["gen_ai.tool.name"], json.loads(attributes(t)["gen_ai.tool.call.arguments"]), attributes(t)["gen_ai.tool.call.result"])
            for t in tools] == [("exponentiate", {"base": 3, "exponent": 5}, "243"),
                                ("multiply", {"first_int": 243, "second_int": 36}, "8748"),
                                ("exponentiate", {"base": 8748, "exponent": 2}, "76527504")]
    root = attributes(roots[0])
    assert root["llmtrace.llm_calls"] == 4 and root["llmtrace.status"] == "ok"
    assert all(s.end_time_unix_nano >= s.start_time_unix_nano > 0 for s in spans)
    return chats, tools


def test_export_math_agent_over_otlp(llmtrace_home, math_runs, otlp_collector):
    _math_home(math_runs, llmtrace_home)  # run with --tag team=core
    r = run_cli("export", "last", "--otlp", otlp_collector.url, env={"OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=abc%20def"})
    assert r.code == 0, r.stderr
    trace = last_trace(llmtrace_home)
    _check_math_spans(otlp_collector.spans(), trace)
    assert {r.path for r in otlp_collector.requests} == {"/v1/traces"}
    assert otlp_collector.requests[0].headers["x-api-key"] == "abc def"
    root = next(s for s in otlp_collector.spans() if not s.parent_span_id)
    assert attributes(root)["llmtrace.tag.team"] == "core"
    res = {kv.key: kv.value.string_value for kv in otlp_collector.exports()[0].resource_spans[0].resource.attributes}
    assert res["service.name"] == "math_agent.py" and res["telemetry.sdk.name"] == "llmtrace"


def test_export_uses_the_standard_variable(llmtrace_home, math_runs, otlp_collector):
    _math_home(math_runs, llmtrace_home)
    r = run_cli("export", "--since", "1d", "--format", "otlp", env={"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_collector.url})
    assert r.code == 0 and len(otlp_collector.spans()) > 10


def test_run_streams_live_and_survives_a_dead_collector(llmtrace_home, mock_server, otlp_collector):
    _math_run(llmtrace_home, mock_server, "--otlp", otlp_collector.url)
    _check_math_spans(otlp_collector.spans(), last_trace(llmtrace_home))
    # Collector down: nothing listens on this port.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    s.close()
    r = _math_run(llmtrace_home, mock_server, "--otlp", dead)
    assert "76527504" in r.stdout and r.stderr.count("could not send spans") == 1
    trace, spans = last_trace(llmtrace_home)
    assert trace.status == "ok" and trace.totals.llm_calls == 4 and len(spans) > 10
    r = run_cli("export", "last", "--otlp", dead)
    assert r.code == 5 and "cannot reach the OTLP endpoint" in r.stderr and r.stderr.count("\n") == 1


def test_json_round_trip(llmtrace_home, math_runs, tmp_path, monkeypatch):
    _math_home(math_runs, llmtrace_home)  # run with --tag team=core
    assert run_cli("feedback", "last", "--score", "7", "--comment", "good").code == 0
    first = tmp_path / "one.json"
    assert run_cli("export", "last", "-o", str(first)).code == 0
    doc = json.loads(first.read_text())
    assert doc["format"] == "llmtrace.trace/1" and doc["trace"]["tags"] == {"team": "core"}
    assert any(s["request"] for s in doc["spans"]) and doc["trace"]["feedback"][0]["comment"] == "good"

    other = tmp_path / "other-home"
    monkeypatch.setenv("LLMTRACE_HOME", str(other))
    r = run_cli("import", str(first))
    assert r.code == 0 and doc["trace"]["id"][:8] in r.stderr
    second = tmp_path / "two.json"
    assert run_cli("export", doc["trace"]["id"][:8], "-o", str(second)).code == 0
    assert second.read_text() == first.read_text()  # identical, byte for byte
    # show --json is the export document, keys in the same (recorded) order: nothing is re-sorted,
    # so tool arguments and message fields read back as the script produced them.
    assert run_cli("show", doc["trace"]["id"][:8], "--json").stdout == first.read_text()
    assert list(doc["spans"][0]) == list(Span.__dataclass_fields__)
    full_here = run_cli("show", doc["trace"]["id"][:8], "--full", env={"LLMTRACE_HOME": str(llmtrace_home)}).stdout
    assert run_cli("show", doc["trace"]["id"][:8], "--full").stdout == full_here
    shown = run_cli("show", "last")
    assert "tool exponentiate(base=8748, exponent=2) → 76527504" in shown.stdout and "score +7.0" in shown.stdout
    again = run_cli("import", str(first))
    assert again.code == 2 and "already in this store" in again.stderr
    assert run_cli("import", "--replace", str(first)).code == 0


def test_jsonl_many_traces(llmtrace_home, math_runs, tmp_path, monkeypatch):
    use_home(math_runs["math_agent.py"].warm, llmtrace_home)  # two traces: the math agent run twice
    r = run_cli("export", "--since", "1d", "--format", "jsonl")
    lines = r.stdout.splitlines()
    assert r.code == 0 and len(lines) == 2 and all(json.loads(x)["format"] == "llmtrace.trace/1" for x in lines)
    (tmp_path / "many.jsonl").write_text(r.stdout)
    monkeypatch.setenv("LLMTRACE_HOME", str(tmp_path / "h2"))
    assert run_cli("import", str(tmp_path / "many.jsonl")).code == 0
    assert len(json.loads(run_cli("ls", "--json").stdout)) == 2


@pytest.mark.parametrize("argv, message", [
    (["export"], "say which traces"),
    (["export", "last", "--format", "xml"], "bad --format"),
    (["export", "last", "--otlp", "localhost:4318"], "bad OTLP endpoint"),
    (["export", "last", "--format", "otlp"], "no OTLP endpoint"),
    (["import", "/nonexistent/file.json"], "cannot read"),
])
def test_export_bad_input(llmtrace_home, argv, message):
    assert run_cli("run", "-q", str(SAMPLES.parent / "tests" / "agents" / "behaves_like_python.py")).code == 0
    env = {k: "" for k in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")}
    r = run_cli(*argv, env=env)
    assert r.code == 2 and message in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_import_rejects_foreign_json(llmtrace_home, tmp_path):
    f = tmp_path / "x.json"
    f.write_text('{"hello": 1}')
    r = run_cli("import", str(f))
    assert r.code == 2 and "not an llmtrace trace document" in r.stderr


def test_without_the_extra_otlp_says_how_to_install(llmtrace_home, tmp_path):
    blocker = tmp_path / "no-otel" / "opentelemetry"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('opentelemetry is not installed')\n")
    env = {"PYTHONPATH": str(blocker.parent)}
    script = str(SAMPLES.parent / "tests" / "agents" / "behaves_like_python.py")
    r = run_cli("run", "--otlp", "http://127.0.0.1:9", script, env=env)
    assert r.code == 2 and "pip install 'llmtrace-local[otel]'" in r.stderr and r.stderr.count("\n") == 1
    r = run_cli("run", script, env={**env, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    assert r.code == 0 and "pip install 'llmtrace-local[otel]'" in r.stderr  # a warning; the run goes on
    r = run_cli("export", "last", "--otlp", "http://127.0.0.1:9", env=env)
    assert r.code == 2 and "pip install 'llmtrace-local[otel]'" in r.stderr


def test_endpoint_resolution(monkeypatch):
    from llmtrace.export import otlp

    for var in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    assert otlp.endpoint(None) is None
    assert otlp.endpoint("http://h:4318") == "http://h:4318/v1/traces"
    assert otlp.endpoint("http://h:4318/custom/path") == "http://h:4318/custom/path"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318/")
    assert otlp.endpoint(None) == "https://collector:4318/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://c/traces")
    assert otlp.endpoint(None) == "https://c/traces"
