"""Interop: llmtrace traces sent to real Arize Phoenix and MLflow servers, read back through their APIs.

A step of its own (`pytest -m interop -n 0`, run by .ci/run and the README; one process, so the
servers start once): they come from the package registry into virtualenvs of their own
(tests/interop/backends.py).
The agents run once, through the scripted server, into one llmtrace home:

  math_agent.py twice (the second run is all cache hits), math_agent_graph.py (create_agent),
  streamed_chain.py, tests/parity/agent_tool_raises.py (a tool raises, the script dies) and
  tests/parity/rag_inmemory.py (retriever and embeddings), tests/parity/responses_api_chat.py
  (the Responses API: plain, streamed, a tool call) — then `export --otlp` to both backends;
  and `run --otlp` live: the math agent to Phoenix (--project live), the create_agent agent to MLflow.

Every assertion reads what the backend itself stored: span kinds, messages, tokens, cost, tool
arguments and results, exception events, project, the root's input and output.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, SAMPLES, run_cli

sys.path.insert(0, str(Path(__file__).parent / "interop"))
import backends  # noqa: E402

pytestmark = pytest.mark.interop

PARITY = ROOT / "tests" / "parity"
SCRIPTS = {  # trace name → script
    "math_agent.py": SAMPLES / "math_agent.py",
    "math_agent_graph.py": SAMPLES / "math_agent_graph.py",
    "streamed_chain.py": SAMPLES / "streamed_chain.py",
    "agent_tool_raises.py": PARITY / "agent_tool_raises.py",
    "rag_inmemory.py": PARITY / "rag_inmemory.py",
    "responses_api_chat.py": PARITY / "responses_api_chat.py",
}


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    phoenix_bin = backends.ensure_venv("phoenix", backends.PHOENIX)
    mlflow_bin = backends.ensure_venv("mlflow", backends.MLFLOW)
    work = tmp_path_factory.mktemp("backends")
    phoenix = backends.Phoenix(phoenix_bin, work / "phoenix")
    try:
        mlflow = backends.Mlflow(mlflow_bin, work / "mlflow")
    except BaseException:
        phoenix.stop()
        raise
    yield phoenix, mlflow
    phoenix.stop()
    mlflow.stop()


class Sent:
    """What llmtrace recorded and sent: its own view of each trace, to compare the backends' with."""

    def __init__(self, home: Path):
        self.env = {"LLMTRACE_HOME": str(home)}
        self.traces: dict[str, list[dict[str, Any]]] = {}  # name → llmtrace's `ls --json` rows, oldest first

    def cli(self, *args: str, ok: tuple[int, ...] = (0,)) -> Any:
        r = run_cli(*args, env=self.env)
        assert r.code in ok, f"llmtrace {' '.join(args)} → {r.code}\n{r.stderr[-3000:]}"
        return r

    def load(self) -> None:
        for row in reversed(json.loads(self.cli("ls", "--json", "--limit", "100").stdout)):
            self.traces.setdefault(row["name"], []).append(row)

    def spans(self, trace_id: str) -> list[dict[str, Any]]:
        return json.loads(self.cli("show", trace_id, "--json").stdout)["spans"]


@pytest.fixture(scope="module")
def sent(servers, tmp_path_factory) -> tuple[Sent, str, str]:
    phoenix, mlflow = servers
    s = Sent(tmp_path_factory.mktemp("interop-home"))
    s.cli("run", "-q", "--mock", str(SCRIPTS["math_agent.py"]))
    s.cli("run", "-q", "--mock", str(SCRIPTS["math_agent.py"]))  # every call answered by the cache
    for name in ("math_agent_graph.py", "streamed_chain.py", "rag_inmemory.py", "responses_api_chat.py"):
        s.cli("run", "-q", "--mock", str(SCRIPTS[name]))
    s.cli("run", "-q", "--mock", str(SCRIPTS["agent_tool_raises.py"]), ok=(1,))
    exported = mlflow.experiment("llmtrace-export")
    live = mlflow.experiment("llmtrace-live")
    s.cli("export", "--since", "1d", "--otlp", phoenix.otlp)
    s.cli("export", "--since", "1d", "--otlp", mlflow.otlp, "--otlp-header", f"x-mlflow-experiment-id={exported}")
    # Live (--no-cache: real calls, priced): spans stream while the agent runs; the root goes last.
    s.cli("run", "-q", "--mock", "--no-cache", "--project", "live", "--otlp", phoenix.otlp, str(SCRIPTS["math_agent.py"]))
    s.cli("run", "-q", "--mock", "--no-cache", "--otlp", mlflow.otlp, "--otlp-header", f"x-mlflow-experiment-id={live}",
          str(SCRIPTS["math_agent_graph.py"]))
    s.load()
    return s, exported, live


def _hex(trace_id: str) -> str:
    return trace_id.replace("-", "")


def _phoenix_trace(phoenix: backends.Phoenix, project: str, trace_id: str) -> list[dict[str, Any]]:
    spans = [x for x in phoenix.spans(project) if x["context"]["trace_id"] == _hex(trace_id)]
    assert spans, f"trace {trace_id} not in Phoenix project {project!r} (projects: {phoenix.projects()})"
    return spans


def _root(spans: list[dict[str, Any]]) -> dict[str, Any]:
    roots = [x for x in spans if x["parent_id"] is None]
    assert len(roots) == 1, [x["name"] for x in roots]
    return roots[0]


def _kinds(spans, key) -> dict[str, int]:
    out: dict[str, int] = {}
    for x in spans:
        out[x[key]] = out.get(x[key], 0) + 1
    return out


def _cost(phoenix: backends.Phoenix, project: str, trace_id: str) -> dict[str, Any]:
    pid = next(p["id"] for p in backends.http("GET", f"{phoenix.url}/v1/projects")["data"] if p["name"] == project)
    data = phoenix.graphql(
        """query($id: ID!, $t: ID!) { node(id: $id) { ... on Project { trace(traceId: $t) {
             costSummary { total { cost tokens } } rootSpan { input { value } output { value } } } } } }""",
        id=pid, t=_hex(trace_id))
    return data["node"]["trace"]


# -- Phoenix --------------------------------------------------------------------------------------

def test_phoenix_math_agent_field_by_field(servers, sent):
    phoenix, _ = servers
    s, _, _ = sent
    first = s.traces["math_agent.py"][0]
    mine = s.spans(first["id"])
    spans = _phoenix_trace(phoenix, "math_agent", first["id"])
    assert len(spans) == len(mine) + 1  # every span, and the run's root
    by_id = {x["context"]["span_id"]: x for x in spans}
    assert all(x["parent_id"] in by_id for x in spans if x["parent_id"])  # every parent link resolves
    kinds = _kinds(spans, "span_kind")
    assert kinds.get("UNKNOWN", 0) == 0, kinds
    assert kinds["LLM"] == 4 and kinds["TOOL"] == 3 and kinds["AGENT"] >= 2 and kinds["CHAIN"] >= 1

    llms = sorted((x for x in spans if x["span_kind"] == "LLM"), key=lambda x: x["start_time"])
    a = llms[0]["attributes"]
    assert a["llm.model_name"] == "gpt-4o-mini-2024-07-18"  # the response's model
    assert a["llm.input_messages.0.message.role"] == "system"
    assert a["llm.input_messages.1.message.role"] == "user"
    assert a["llm.input_messages.1.message.content"].startswith("Take 3 to the fifth power")
    assert a["llm.output_messages.0.message.role"] == "assistant"
    assert a["llm.output_messages.0.message.tool_calls.0.tool_call.function.name"] == "exponentiate"
    assert json.loads(a["llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments"]) == {"base": 3, "exponent": 5}
    assert [json.loads(a[f"llm.tools.{i}.tool.json_schema"])["function"]["name"] for i in range(2)] == ["multiply", "exponentiate"]
    assert a["llm.token_count.prompt"] > 0 and a["llm.token_count.completion"] > 0
    assert json.loads(a["llm.invocation_parameters"])["temperature"] == 0
    # The second call carries the first tool call and its result back to the model.
    b = llms[1]["attributes"]
    roles = [b[f"llm.input_messages.{i}.message.role"] for i in range(4)]
    assert roles == ["system", "user", "assistant", "tool"]
    assert b["llm.input_messages.3.message.content"] == "243"
    assert b["llm.input_messages.3.message.tool_call_id"] == b["llm.input_messages.2.message.tool_calls.0.tool_call.id"]
    last = llms[-1]["attributes"]
    assert "76527504" in last["output.value"] and last["output.mime_type"] == "text/plain"

    tools = sorted((x for x in spans if x["span_kind"] == "TOOL"), key=lambda x: x["start_time"])
    assert [(t["attributes"]["tool.name"], json.loads(t["attributes"]["input.value"]), t["attributes"]["output.value"])
            for t in tools] == [("exponentiate", {"base": 3, "exponent": 5}, "243"),
                                ("multiply", {"first_int": 243, "second_int": 36}, "8748"),
                                ("exponentiate", {"base": 8748, "exponent": 2}, "76527504")]
    assert tools[1]["attributes"]["tool.description"] == "Multiply two integers together."

    chains = [x for x in spans if x["span_kind"] in ("CHAIN", "AGENT") and x["parent_id"]]
    assert all("input.value" in x["attributes"] for x in chains)

    summary = _cost(phoenix, "math_agent", first["id"])
    assert summary["costSummary"]["total"]["tokens"] == first["totals"]["input_tokens"] + first["totals"]["output_tokens"]
    assert summary["costSummary"]["total"]["cost"] == pytest.approx(first["totals"]["cost"], rel=0.02)
    root_in = json.loads(summary["rootSpan"]["input"]["value"])
    assert root_in["argv"][0].endswith("math_agent.py") and root_in["input"]["input"].startswith("Take 3")
    assert "76527504" in json.loads(summary["rootSpan"]["output"]["value"])["output"]


def test_phoenix_cache_hits_cost_nothing(servers, sent):
    phoenix, _ = servers
    s, _, _ = sent
    warm = s.traces["math_agent.py"][1]
    assert warm["totals"]["cache_hits"] == 4 and warm["totals"]["cost"] == 0
    spans = _phoenix_trace(phoenix, "math_agent", warm["id"])
    llms = [x for x in spans if x["span_kind"] == "LLM"]
    assert len(llms) == 4
    for x in llms:
        a = x["attributes"]
        assert a["llmtrace.cache_hit"] == "exact" and a["llmtrace.usage.input_tokens"] > 0
        assert not any(k.startswith(("llm.token_count", "gen_ai.usage")) for k in a), sorted(a)
    summary = _cost(phoenix, "math_agent", warm["id"])
    assert not summary["costSummary"]["total"]["cost"]  # None or 0: nothing billed


def test_phoenix_create_agent_and_streamed_chain(servers, sent):
    phoenix, _ = servers
    s, _, _ = sent
    graph = _phoenix_trace(phoenix, "math_agent_graph", s.traces["math_agent_graph.py"][0]["id"])
    kinds = _kinds(graph, "span_kind")
    assert kinds.get("UNKNOWN", 0) == 0 and kinds["LLM"] == 4 and kinds["TOOL"] == 3, kinds
    tool_ids = {x["attributes"].get("gen_ai.tool.call.id") or x["attributes"].get("tool.id")
                for x in graph if x["span_kind"] == "TOOL"}
    assert None not in tool_ids  # create_agent passes the model's tool-call ids to the tools
    assert any(x["span_kind"] == "AGENT" and x["name"] == "LangGraph" for x in graph)

    stream = _phoenix_trace(phoenix, "streamed_chain", s.traces["streamed_chain.py"][0]["id"])
    llm = next(x for x in stream if x["span_kind"] == "LLM")["attributes"]
    haiku = llm["llm.output_messages.0.message.content"]
    assert haiku and llm["output.value"] == haiku and llm["llmtrace.streamed"] is True
    assert llm["llm.input_messages.1.message.content"].startswith("Write a haiku about")
    assert any(x["span_kind"] == "PROMPT" for x in stream)
    assert _root(stream)["attributes"]["output.value"] == haiku  # the chain's output is the run's


def test_phoenix_crashing_tool_has_exception_events(servers, sent):
    phoenix, _ = servers
    s, _, _ = sent
    spans = _phoenix_trace(phoenix, "agent_tool_raises", s.traces["agent_tool_raises.py"][0]["id"])
    tool = next(x for x in spans if x["span_kind"] == "TOOL")
    assert tool["status_code"] == "ERROR"
    (event,) = tool["events"]
    ev = event["attributes"]
    assert event["name"] == "exception" and ev["exception.type"] == "WeatherServiceDown"
    assert ev["exception.message"] == "weather service unreachable while looking up Oslo"
    assert 'raise WeatherServiceDown(f"weather service unreachable' in ev["exception.stacktrace"]
    assert json.loads(tool["attributes"]["input.value"]) == {"city": "Oslo"}
    root = _root(spans)
    assert root["status_code"] == "ERROR"
    rev = root["events"][0]["attributes"]
    assert rev["exception.type"] == "WeatherServiceDown" and "agent_tool_raises.py" in rev["exception.stacktrace"]
    assert "llmtrace" not in rev["exception.stacktrace"].split("agent_tool_raises.py")[0]  # starts in the script
    assert json.loads(root["attributes"]["output.value"])["exit_code"] == 1


def test_phoenix_retriever_and_embeddings(servers, sent):
    phoenix, _ = servers
    s, _, _ = sent
    spans = _phoenix_trace(phoenix, "rag_inmemory", s.traces["rag_inmemory.py"][0]["id"])
    kinds = _kinds(spans, "span_kind")
    assert kinds["RETRIEVER"] >= 1 and kinds["EMBEDDING"] >= 2 and kinds.get("UNKNOWN", 0) == 0, kinds
    retriever = next(x for x in spans if x["span_kind"] == "RETRIEVER")["attributes"]
    assert retriever["input.mime_type"] == "text/plain" and retriever["input.value"]
    assert retriever["retrieval.documents.0.document.content"]
    emb = next(x for x in spans if x["span_kind"] == "EMBEDDING")["attributes"]
    assert emb["embedding.model_name"].startswith("text-embedding") and emb["embedding.embeddings.0.embedding.text"]


def test_phoenix_responses_api(servers, sent):
    phoenix, _ = servers
    s, _, _ = sent
    spans = _phoenix_trace(phoenix, "responses_api_chat", s.traces["responses_api_chat.py"][0]["id"])
    llms = sorted((x["attributes"] for x in spans if x["span_kind"] == "LLM"), key=lambda a: a["llmtrace.usage.input_tokens"])
    assert len(llms) >= 4 and all(a["llm.token_count.prompt"] > 0 for a in llms)
    joke = next(a for a in llms if "penguins" in a.get("llm.input_messages.0.message.content", ""))
    assert joke["llm.input_messages.0.message.role"] == "user" and joke["llm.output_messages.0.message.content"]
    call = next(a for a in llms if a.get("llm.output_messages.0.message.tool_calls.0.tool_call.function.name"))
    assert json.loads(call["llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments"]) == {"word": "observability"}
    assert json.loads(call["llm.tools.0.tool.json_schema"])["function"]["name"] == "get_word_length"


def test_phoenix_projects_and_live_run(servers, sent):
    phoenix, _ = servers
    s, _, _ = sent
    projects = set(phoenix.projects())
    assert {"math_agent", "math_agent_graph", "streamed_chain", "agent_tool_raises", "rag_inmemory", "live"} <= projects
    live = s.traces["math_agent.py"][2]
    spans = _phoenix_trace(phoenix, "live", live["id"])
    assert len(spans) == len(s.spans(live["id"])) + 1
    assert "76527504" in _root(spans)["attributes"]["output.value"]
    assert _cost(phoenix, "live", live["id"])["costSummary"]["total"]["cost"] == pytest.approx(live["totals"]["cost"], rel=0.02)


def test_phoenix_keeps_the_first_copy_of_a_re_export(servers, sent):
    """Phoenix drops spans whose ids it holds (as the README says): a re-export adds nothing."""
    phoenix, _ = servers
    s, _, _ = sent
    first = s.traces["streamed_chain.py"][0]["id"]
    before = len(_phoenix_trace(phoenix, "streamed_chain", first))
    s.cli("export", first, "--otlp", phoenix.otlp)
    assert len(_phoenix_trace(phoenix, "streamed_chain", first)) == before


# -- MLflow ---------------------------------------------------------------------------------------

def _mlflow_trace(traces, trace_id: str) -> dict[str, Any]:
    found = [t for t in traces if t["trace_id"] == "tr-" + _hex(trace_id)]
    assert len(found) == 1, [t["trace_id"] for t in traces]
    return found[0]


def test_mlflow_exported_traces(servers, sent):
    _, mlflow = servers
    s, exported, _ = sent
    traces = mlflow.traces(exported)
    assert len(traces) == 7  # every exported trace once

    first = s.traces["math_agent.py"][0]
    t = _mlflow_trace(traces, first["id"])
    assert t["state"] == "OK"
    assert "Take 3 to the fifth power" in t["request_preview"] and "76527504" in t["response_preview"]
    assert t["token_usage"]["input_tokens"] == first["totals"]["input_tokens"]
    assert t["token_usage"]["output_tokens"] == first["totals"]["output_tokens"]
    assert json.loads(t["trace_metadata"]["mlflow.trace.cost"])["total_cost"] == pytest.approx(first["totals"]["cost"], rel=0.02)
    types = _kinds(t["spans"], "span_type")
    assert None not in types and "UNKNOWN" not in types, types
    assert types["LLM"] == 4 and types["TOOL"] == 3 and types["AGENT"] >= 2
    llm = next(x for x in t["spans"] if x["span_type"] == "LLM")
    assert llm["attributes"]["mlflow.llm.model"] == "gpt-4o-mini-2024-07-18"
    assert [tool["name"] for tool in llm["attributes"]["mlflow.chat.tools"]] == ["multiply", "exponentiate"]
    assert llm["inputs"]["messages"][1]["content"].startswith("Take 3")
    tools = sorted((x for x in t["spans"] if x["span_type"] == "TOOL"), key=lambda x: x["name"])
    assert {(x["name"], json.dumps(x["inputs"], sort_keys=True), str(x["outputs"])) for x in tools} == {
        ("execute_tool exponentiate", '{"base": 3, "exponent": 5}', "243"),
        ("execute_tool multiply", '{"first_int": 243, "second_int": 36}', "8748"),
        ("execute_tool exponentiate", '{"base": 8748, "exponent": 2}', "76527504")}

    warm = _mlflow_trace(traces, s.traces["math_agent.py"][1]["id"])
    assert not warm["token_usage"] and "mlflow.trace.cost" not in warm["trace_metadata"]  # cache hits: nothing billed

    crash = _mlflow_trace(traces, s.traces["agent_tool_raises.py"][0]["id"])
    assert crash["state"] == "ERROR"
    tool = next(x for x in crash["spans"] if x["span_type"] == "TOOL")
    assert tool["status"] == "SpanStatusCode.ERROR"
    assert [(e["name"], e["attributes"]["exception.type"]) for e in tool["events"]] == [("exception", "WeatherServiceDown")]
    assert "raise WeatherServiceDown" in tool["events"][0]["attributes"]["exception.stacktrace"]


def test_mlflow_live_run(servers, sent):
    _, mlflow = servers
    s, _, live = sent
    traces = mlflow.traces(live)
    assert len(traces) == 1
    graph = s.traces["math_agent_graph.py"][1]
    t = _mlflow_trace(traces, graph["id"])
    assert len(t["spans"]) == len(s.spans(graph["id"])) + 1
    assert "76527504" in t["response_preview"] and t["token_usage"]["input_tokens"] == graph["totals"]["input_tokens"]


def test_mlflow_re_export_updates_in_place(servers, sent):
    _, mlflow = servers
    s, exported, _ = sent
    first = s.traces["streamed_chain.py"][0]["id"]
    s.cli("export", first, "--otlp", mlflow.otlp, "--otlp-header", f"x-mlflow-experiment-id={exported}")
    traces = mlflow.traces(exported)
    assert len(traces) == 7 and len(_mlflow_trace(traces, first)["spans"]) == len(s.spans(first)) + 1


def test_mlflow_needs_its_experiment_header(servers, sent):
    _, mlflow = servers
    s, _, _ = sent
    r = s.cli("export", "last", "--otlp", mlflow.otlp, ok=(5,))
    assert "refused the spans: HTTP" in r.stderr and r.stderr.count("\n") == 1
