"""End to end: real agent scripts under `llmtrace run`, through real HTTP to the scripted server.

The math agents, the LCEL chain and the bare SDK script are run once per session (conftest's
shared_runs); the cache tests read the warm re-runs of the same scripts.
"""

from __future__ import annotations

import json

from conftest import AGENTS, assert_no_orphans, last_trace, run_cli, server_env

MATH_TOOLS = [
    ("exponentiate", {"base": 3, "exponent": 5}, 243),
    ("multiply", {"first_int": 243, "second_int": 36}, 8748),
    ("exponentiate", {"base": 8748, "exponent": 2}, 76527504),
]


def _check_math_trace(run, top_name):
    trace, spans = run.trace, run.spans
    assert trace.status == "ok" and trace.exit_code == 0
    llm = [s for s in spans if s.kind == "llm"]
    tools = [s for s in spans if s.kind == "tool"]
    # One HTTP request, one LLM span: never two.
    assert len(llm) == 4 == run.stats["by_path"]["/v1/chat/completions"]
    # The classic executor reports the tool's int, LangGraph its ToolMessage text.
    assert [(t.name, t.inputs, str(t.outputs)) for t in tools] == [(n, a, str(r)) for n, a, r in MATH_TOOLS]
    assert [tc["name"] for s in llm[:3] for tc in s.tool_calls] == ["exponentiate", "multiply", "exponentiate"]
    assert "76527504" in llm[-1].outputs["content"]
    for s in llm:
        assert s.model == "gpt-4o-mini-2024-07-18" and s.model_requested == "gpt-4o-mini"
        assert s.provider == "openai"
        assert s.input_tokens > 0 and s.output_tokens > 0
        assert s.cost is not None and s.cost > 0
        assert s.request["model"] == "gpt-4o-mini" and s.request["messages"]
        assert s.response is not None
        assert s.end_us >= s.start_us
    assert trace.totals.llm_calls == 4 and trace.totals.tool_calls == 3
    assert trace.totals.input_tokens == sum(s.input_tokens for s in llm)
    assert abs(trace.totals.cost - sum(s.cost for s in llm)) < 1e-12
    assert_no_orphans(spans)
    tops = [s for s in spans if s.parent_id is None]
    assert [s.name for s in tops] == [top_name]
    return trace, spans


def test_classic_agent_executor(math_runs):
    run = math_runs["math_agent.py"].cold  # `llmtrace run --tag team=core sample_agents/math_agent.py`
    r = run.result
    assert r.code == 0, r.stderr
    assert "76527504" in r.stdout
    trace, spans = _check_math_trace(run, "AgentExecutor")
    llm = [s for s in spans if s.kind == "llm"]
    # The classic executor streams its model calls: usage must still be there (custom base URL).
    assert all(s.streamed for s in llm)
    assert all(s.request.get("stream") is True for s in llm)
    assert f"llmtrace show {trace.id[:8]}" in r.stderr and trace.id in r.stderr
    # Tool spans hang under the executor; LLM spans under the agent's RunnableSequence.
    by_id = {s.id: s for s in spans}
    assert all(by_id[t.parent_id].name == "AgentExecutor" for t in spans if t.kind == "tool")
    assert all(by_id[s.parent_id].name == "RunnableSequence" for s in llm)


def test_create_agent_langgraph(math_runs):
    run = math_runs["math_agent_graph.py"].cold
    assert run.result.code == 0, run.result.stderr
    assert "76527504" in run.result.stdout
    _check_math_trace(run, "LangGraph")


def test_mock_flag_runs_offline_without_key(llmtrace_home):
    r = run_cli("run", "--mock", "sample_agents/math_agent.py")
    assert r.code == 0, r.stderr
    assert "76527504" in r.stdout
    trace, spans = last_trace(llmtrace_home)
    assert trace.totals.llm_calls == 4 and trace.totals.tool_calls == 3


def test_parallel_tool_calls_async(llmtrace_home, mock_server):
    server = mock_server({"replies": [
        {"when": {"tool_results": 0}, "tool_calls": [
            {"name": "exponentiate", "arguments": {"base": 2, "exponent": 10}},
            {"name": "multiply", "arguments": {"first_int": 6, "second_int": 7}}]},
        {"content": "done: {tool_results} results"},
    ]})
    r = run_cli("run", str(AGENTS / "parallel_async_agent.py"), env=server_env(server))
    assert r.code == 0, r.stderr
    assert "done: 2 results" in r.stdout
    trace, spans = last_trace(llmtrace_home)
    tools = sorted((s for s in spans if s.kind == "tool"), key=lambda s: s.name)
    assert [(t.name, str(t.outputs)) for t in tools] == [("exponentiate", "1024"), ("multiply", "42")]
    llm = [s for s in spans if s.kind == "llm"]
    assert len(llm) == 2 == server.stats.requests
    assert len(llm[0].tool_calls) == 2
    assert_no_orphans(spans)
    assert [s.name for s in spans if s.parent_id is None] == ["LangGraph"]


def test_threads_keep_their_parent(llmtrace_home, mock_server):
    server = mock_server()
    r = run_cli("run", str(AGENTS / "threads_agent.py"), env=server_env(server))
    assert r.code == 0, r.stderr
    trace, spans = last_trace(llmtrace_home)
    llm = [s for s in spans if s.kind == "llm"]
    assert len(llm) == 4 == server.stats.requests  # thread + 2 pool workers + the late worker
    fan_out = next(s for s in spans if s.name == "fan_out")
    worker_calls = [s for s in llm if "late worker" not in json.dumps(s.inputs)]
    assert len(worker_calls) == 3
    assert all(s.parent_id == fan_out.id for s in worker_calls)
    late = next(s for s in llm if "late worker" in json.dumps(s.inputs))
    assert late.parent_id is None and late.status == "ok"  # top-level call made after the chain
    assert_no_orphans(spans)


def test_lcel_invoke_stream_batch_async(lcel_runs):
    run = lcel_runs.cold
    assert run.result.code == 0, run.result.stderr
    spans = run.spans
    llm = [s for s in spans if s.kind == "llm"]
    assert len(llm) == 5 == run.stats["requests"]
    assert all(s.input_tokens and s.output_tokens for s in llm), "streamed calls must carry usage too"
    assert sum(s.streamed for s in llm) == 1
    tops = [s for s in spans if s.parent_id is None]
    assert len(tops) == 5 and all(s.name == "RunnableSequence" for s in tops)
    streamed_top = next(t for t in tops if any(s.streamed and s.parent_id == t.id for s in llm))
    assert streamed_top.inputs == {"topic": "stream"}  # a streamed chain learns its input at the end
    assert_no_orphans(spans)


def test_bare_openai_sdk_calls_are_spans(bare_runs):
    run = bare_runs.cold
    r = run.result
    assert r.code == 0, r.stderr
    assert "stream: This is a scripted reply" in r.stdout
    llm = [s for s in run.spans if s.kind == "llm"]
    assert len(llm) == 4 == run.stats["requests"]
    bare = [s for s in llm if s.name == "openai.chat.completions"]
    assert len(bare) == 3
    for s in bare:
        assert s.input_tokens and s.output_tokens and s.cost and s.model == "gpt-4o-mini-2024-07-18"
        assert s.outputs["content"].startswith("This is a scripted reply")
    streamed = next(s for s in bare if s.streamed)
    assert streamed.request["stream_options"] == {"include_usage": True}
    assert streamed.response["chunks"][-1]["usage"]["completion_tokens"] == streamed.output_tokens


def test_retriever_spans(llmtrace_home, mock_server):
    server = mock_server()
    r = run_cli("run", str(AGENTS / "retriever_chain.py"), env=server_env(server))
    assert r.code == 0, r.stderr
    trace, spans = last_trace(llmtrace_home)
    retr = [s for s in spans if s.kind == "retriever"]
    assert len(retr) == 1 and retr[0].name == "Notes" and retr[0].inputs == {"query": "tracing"}
    assert retr[0].outputs == [{"page_content": "note about tracing", "metadata": {"source": "notes.txt"}}]
    llm = next(s for s in spans if s.kind == "llm")
    assert "note about tracing" in json.dumps(llm.request["messages"])
    assert_no_orphans(spans)
    assert 'retriever Notes("tracing") → 1 document' in run_cli("show", "last").stdout
