"""Unit tests of the OTLP attribute mapping: stored spans in every shape llmtrace records them
(LangChain messages, OpenAI and Anthropic bodies as sent) → GenAI messages and OpenInference fields.

The end-to-end proof, against real Phoenix and MLflow servers, is tests/test_interop.py."""

from __future__ import annotations

import json

import pytest

from llmtrace.export import genai, otlp
from llmtrace.model import Span, Trace


def _llm(**kw) -> Span:
    base = dict(id="00000000-0000-4000-8000-000000000001", trace_id="t", parent_id="p", kind="llm", name="ChatOpenAI",
                start_us=1, end_us=2, status="ok", provider="openai", model_requested="gpt-4o-mini",
                model="gpt-4o-mini-2024-07-18", input_tokens=10, output_tokens=5, cost=0.001)
    return Span(**{**base, **kw})


def test_langchain_messages_become_genai_parts():
    span = _llm(inputs={"messages": [
        {"role": "system", "content": "be brief"},
        {"role": "human", "content": "3^5?"},
        {"role": "ai", "content": "", "tool_calls": [{"name": "exponentiate", "args": {"base": 3, "exponent": 5}, "id": "c1"}]},
        {"role": "tool", "content": "243", "tool_call_id": "c1"},
    ]}, outputs={"content": "243."}, finish_reason="stop")
    assert genai.input_messages(span) == [
        {"role": "system", "parts": [{"type": "text", "content": "be brief"}]},
        {"role": "user", "parts": [{"type": "text", "content": "3^5?"}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "exponentiate", "arguments": {"base": 3, "exponent": 5}}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "243"}]},
    ]
    assert genai.output_messages(span) == [{"role": "assistant", "parts": [{"type": "text", "content": "243."}], "finish_reason": "stop"}]


def test_openai_body_shapes_and_content_lists():
    span = _llm(inputs={"messages": [
        {"role": "developer", "content": [{"type": "text", "text": "rules"}]},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c9", "type": "function",
                                                               "function": {"name": "f", "arguments": "{\"x\": 1}"}}]},
        {"role": "tool", "tool_call_id": "c9", "content": "{\"ok\": true}"},
    ]}, tool_calls=[{"name": "g", "args": {}, "id": "c10"}], outputs={"content": None, "tool_calls": []},
        finish_reason="tool_calls")
    msgs = genai.input_messages(span)
    assert msgs[0] == {"role": "system", "parts": [{"type": "text", "content": "rules"}]}
    assert msgs[1]["parts"] == [{"type": "tool_call", "id": "c9", "name": "f", "arguments": {"x": 1}}]
    assert msgs[2]["parts"][0]["id"] == "c9"
    out = genai.output_messages(span)
    assert out == [{"role": "assistant", "finish_reason": "tool_call", "parts": [{"type": "tool_call", "id": "c10", "name": "g", "arguments": {}}]}]


@pytest.mark.parametrize("reason, expected", [("stop", "stop"), ("length", "length"), ("tool_calls", "tool_call"),
                                              ("tool_use", "tool_call"), ("end_turn", "stop"), ("max_tokens", "length"),
                                              ("content_filter", "content_filter")])
def test_finish_reasons_follow_the_schema(reason, expected):
    assert genai.finish_reason(_llm(finish_reason=reason)) == expected


def test_tool_definitions_from_openai_and_anthropic_bodies():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    oa = _llm(request={"model": "m", "tools": [{"type": "function", "function": {"name": "f", "description": "d", "parameters": schema}}]})
    an = _llm(request={"model": "m", "tools": [{"name": "f", "description": "d", "input_schema": schema}]})
    assert genai.tool_definitions(oa) == genai.tool_definitions(an) == [
        {"type": "function", "name": "f", "description": "d", "parameters": schema}]
    name, a = otlp.span_attributes(oa)
    assert json.loads(a["llm.tools.0.tool.json_schema"]) == {"type": "function", "function": {"name": "f", "description": "d", "parameters": schema}}
    assert json.loads(a["llm.invocation_parameters"]) == {"model": "m"}
    assert name == "chat gpt-4o-mini" and a["llm.model_name"] == "gpt-4o-mini-2024-07-18"


def test_a_cache_hit_exports_no_billable_usage():
    live = otlp.span_attributes(_llm())[1]
    hit = otlp.span_attributes(_llm(cache_hit="exact", cost=0.0, cost_saved=0.001))[1]
    billable = ("gen_ai.usage.", "llm.token_count.", "mlflow.llm.cost")
    assert live["gen_ai.usage.input_tokens"] == 10 and live["llm.token_count.total"] == 15
    assert not [k for k in hit if k.startswith(billable)]
    assert hit["llmtrace.usage.input_tokens"] == 10 and hit["llmtrace.cost_saved_usd"] == 0.001


@pytest.mark.parametrize("kind, name, top, expected", [
    ("chain", "AgentExecutor", False, "AGENT"), ("chain", "LangGraph", True, "AGENT"),
    ("chain", "RunnableSequence", False, "CHAIN"), ("chain", "ChatPromptTemplate", False, "PROMPT"),
    ("chain", "my_agent", True, "AGENT"), ("tool", "t", False, "TOOL"), ("retriever", "r", False, "RETRIEVER"),
    ("embedding", "e", False, "EMBEDDING"), ("llm", "l", False, "LLM"),
])
def test_span_kinds(kind, name, top, expected):
    span = Span(id="00000000-0000-4000-8000-000000000002", trace_id="t", parent_id=None if top else "p", kind=kind,
                name=name, start_us=1)
    assert genai.span_kind(span, top) == expected


def test_values_and_documents():
    assert genai.value("hi") == ("hi", "text/plain") and genai.value({"a": 1}) == ('{"a": 1}', "application/json")
    assert genai.value(None) is None
    span = Span(id="x", trace_id="t", parent_id="p", kind="retriever", name="r", start_us=1, inputs={"query": "q"},
                outputs=[{"page_content": "doc", "metadata": {"id": "7", "score": 0.5}}])
    a = otlp.span_attributes(span)[1]
    assert a["input.value"] == "q" and a["input.mime_type"] == "text/plain"
    assert (a["retrieval.documents.0.document.content"], a["retrieval.documents.0.document.id"],
            a["retrieval.documents.0.document.score"]) == ("doc", "7", 0.5)


def test_project_name_resolution(monkeypatch):
    t = Trace(id="00000000-0000-4000-8000-000000000003", name="agent.py", start_us=1)
    monkeypatch.delenv("LLMTRACE_PROJECT", raising=False)
    assert otlp.project_name(t) == "agent"
    monkeypatch.setenv("LLMTRACE_PROJECT", "team")
    assert otlp.project_name(t) == "team"
    t.tags["project"] = "tagged"
    assert otlp.project_name(t) == "tagged" and otlp.project_name(t, "explicit") == "explicit"


def test_headers_from_the_command_line_win(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "a=1,b=x%20y")
    assert otlp.headers(["a=2", "c = 3"]) == {"a": "2", "b": "x y", "c": "3"}
    with pytest.raises(Exception, match="expected NAME=VALUE"):
        otlp.headers(["novalue"])
