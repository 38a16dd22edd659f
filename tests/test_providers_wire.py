"""Ollama (langchain-ollama → ollama → httpx) and Gemini (langchain-google-genai → google-genai → httpx) captured
at the wire, against the scripted server's /api/chat and generateContent routes: spans with the request and
response bodies and the provider's own token counts, the record/replay cache, `llmtrace replay` offline,
budgets, and the SDK's own retry behaviour (none added)."""

from __future__ import annotations

import json

import pytest

from conftest import AGENTS, last_trace, run_cli

pytest.importorskip("langchain_ollama")
pytest.importorskip("langchain_google_genai")

AGENT = str(AGENTS / "provider_agent.py")
SCRIPT = json.loads((AGENTS / "provider_agent.mock.json").read_text())
EXPECTED = "tools: ['multiply']\nanswer: The answer is 42.\n"


def provider_env(server) -> dict[str, str]:
    root = server.anthropic_base_url  # the server's root URL: both SDKs add their own paths
    return {"OLLAMA_HOST": root, "GOOGLE_GEMINI_BASE_URL": root, "GOOGLE_API_KEY": "AIza-test-not-a-real-key-0000",
            "GEMINI_API_KEY": ""}


def _llm_spans(home):
    trace, spans = last_trace(home)
    return trace, [s for s in spans if s.kind == "llm"]


@pytest.mark.parametrize("provider", ["ollama", "gemini"])
def test_calls_are_captured_cached_and_replayed_offline(provider, mock_server, llmtrace_home):
    server = mock_server(SCRIPT)
    env = provider_env(server)
    cold = run_cli("run", AGENT, provider, env=env)
    assert cold.code == 0, cold.stderr
    assert cold.stdout.startswith(EXPECTED) and "streamed: Hello" in cold.stdout
    assert server.stats.requests == 3
    trace, llm = _llm_spans(llmtrace_home)
    assert len(llm) == 3 and all(s.request and s.response and s.cache_hit is None for s in llm)
    # The provider's own counts, as the server sent them (not LangChain's).
    usage = server.stats.as_dict()["usage"]
    assert sum(s.input_tokens for s in llm) == usage["input_tokens"] > 0
    assert sum(s.output_tokens for s in llm) == usage["output_tokens"] > 0
    first, _, streamed = llm
    assert first.tool_calls[0]["name"] == "multiply" and first.tool_calls[0]["args"] == {"a": 6, "b": 7}
    assert streamed.streamed and streamed.metadata["chunks"] > 2
    if provider == "ollama":
        assert first.request["model"] == "llama3.2" and first.model == "llama3.2"
        assert streamed.response["stream"] and streamed.response["lines"][-1]["done"]
    else:
        assert first.request["contents"] and first.model == "gemini-2.5-flash" and first.cost > 0
        assert streamed.response["stream"] and streamed.response["chunks"]
    stored = (llmtrace_home / "traces.db").read_bytes()
    assert b"AIza-test-not-a-real-key" not in stored

    # A re-run: every call answered from the cache, nothing sent, the same output.
    server.stats.reset()
    warm = run_cli("run", AGENT, provider, env=env)
    assert warm.code == 0 and warm.stdout == cold.stdout and server.stats.requests == 0
    _, again = _llm_spans(llmtrace_home)
    assert [s.cache_hit for s in again] == ["exact"] * 3
    assert [(s.input_tokens, s.output_tokens) for s in again] == [(s.input_tokens, s.output_tokens) for s in llm]

    # `llmtrace replay`, with the server gone: the recorded answers, nothing sent.
    server.stop()
    replayed = run_cli("replay", trace.id, "--", provider, env=env)
    assert replayed.code == 0, replayed.stderr
    assert replayed.stdout == cold.stdout
    _, answered = _llm_spans(llmtrace_home)
    assert [s.cache_hit for s in answered] == ["replay"] * 3


def test_max_calls_stops_a_wire_captured_model_and_cache_hits_are_free(mock_server, llmtrace_home):
    server = mock_server(SCRIPT)
    env = provider_env(server)
    r = run_cli("run", "--no-cache", "--max-calls", "2", AGENT, "ollama", env=env)
    assert r.code == 1 and "llmtrace.errors.BudgetExceeded: llmtrace budget --max-calls 2" in r.stderr
    assert r.stdout == EXPECTED and server.stats.requests == 2
    trace, llm = _llm_spans(llmtrace_home)
    assert trace.status == "over-budget"
    assert [s.status for s in llm] == ["ok", "ok", "error"] and llm[2].error_type == "BudgetExceeded"

    # Recorded once, the same agent under --max-calls 1 replays its calls from the cache: they count for nothing.
    assert run_cli("run", "-q", AGENT, "ollama", env=env).code == 0
    server.stats.reset()
    r = run_cli("run", "--max-calls", "1", AGENT, "ollama", env=env)
    assert r.code == 0 and server.stats.requests == 0, r.stderr


def test_ollama_errors_are_not_retried_as_under_python(mock_server, llmtrace_home, tmp_path):
    server = mock_server({**SCRIPT, "faults": [503]})
    env = provider_env(server)
    r = run_cli("run", AGENT, "ollama", env=env)
    assert r.code == 1 and "ResponseError" in r.stderr and server.stats.requests == 1
    _, llm = _llm_spans(llmtrace_home)
    assert len(llm) == 1 and llm[0].status == "error" and llm[0].request["model"] == "llama3.2"


GEMINI_RETRIES = """
from langchain_google_genai import ChatGoogleGenerativeAI

llm = ChatGoogleGenerativeAI(model="gemini-2.5-flash", temperature=0, max_retries=3)
print(llm.invoke("Say hello to the world").content)
"""


def test_gemini_retries_through_its_own_loop_on_one_span(mock_server, llmtrace_home, tmp_path):
    script = tmp_path / "retrying.py"
    script.write_text(GEMINI_RETRIES)
    server = mock_server({**SCRIPT, "faults": [503]})
    r = run_cli("run", str(script), env=provider_env(server))
    assert r.code == 0 and r.stdout == "Hello there, world of ours!\n", r.stderr
    assert server.stats.as_dict()["by_status"] == {"503": 1, "200": 1}
    _, [llm] = _llm_spans(llmtrace_home)
    assert llm.status == "ok" and llm.attempts == 2 and llm.metadata["attempt_log"][0]["status"] == 503
    # The answer that came after the retry is the one cached: the next run sends nothing.
    server.stats.reset()
    again = run_cli("run", str(script), env=provider_env(server))
    assert again.stdout == r.stdout and server.stats.requests == 0


def test_reprice_after_adding_an_ollama_model(mock_server, llmtrace_home):
    server = mock_server(SCRIPT)
    assert run_cli("run", "-q", AGENT, "ollama", env=provider_env(server)).code == 0
    [row] = json.loads(run_cli("cost", "--json").stdout)["rows"]
    assert row["key"] == "llama3.2" and row["unpriced_calls"] == 3
    (llmtrace_home / "prices.json").write_text(json.dumps({"llama3.2": {"input": 0.1, "output": 0.2}}))
    r = run_cli("reprice")
    assert r.code == 0 and "3 changed (3 priced for the first time)" in r.stderr, r.stderr
    [row] = json.loads(run_cli("cost", "--json").stdout)["rows"]
    assert row["unpriced_calls"] == 0
    assert abs(row["cost"] - (row["input_tokens"] * 0.1 + row["output_tokens"] * 0.2) / 1e6) < 1e-12


def test_mock_flag_answers_ollama_and_gemini_and_is_left_out_of_cost(llmtrace_home, tmp_path):
    script = tmp_path / "agent.py"
    script.write_text((AGENTS / "provider_agent.py").read_text())
    (tmp_path / "agent.mock.json").write_text(json.dumps(SCRIPT))
    for provider in ("ollama", "gemini"):
        r = run_cli("run", "-q", "--mock", str(script), provider)
        assert r.code == 0 and r.stdout.startswith(EXPECTED), r.stderr
    out = json.loads(run_cli("cost", "--json").stdout)
    assert out["rows"] == [] and out["mock_calls_left_out"] == 6
    both = json.loads(run_cli("cost", "--json", "--include-mock").stdout)
    assert sorted(r["key"] for r in both["rows"]) == ["gemini-2.5-flash", "llama3.2"]


ASYNC_AGENT = """
import asyncio
import sys

provider = sys.argv[1]
if provider == "ollama":
    from langchain_ollama import ChatOllama as Model
    llm = Model(model="llama3.2", temperature=0)
else:
    from langchain_google_genai import ChatGoogleGenerativeAI as Model
    llm = Model(model="gemini-2.5-flash", temperature=0, max_retries=1)


async def main():
    whole = await llm.ainvoke("Say hello to the world")
    pieces = [str(c.content) async for c in llm.astream("Say hello once more")]
    print(whole.content, "|".join(pieces))

asyncio.run(main())
"""


@pytest.mark.parametrize("provider", ["ollama", "gemini"])
def test_async_calls_are_captured_and_cached(provider, mock_server, llmtrace_home, tmp_path):
    script = tmp_path / "async_agent.py"
    script.write_text(ASYNC_AGENT)
    server = mock_server(SCRIPT)
    env = provider_env(server)
    cold = run_cli("run", "-q", str(script), provider, env=env)
    assert cold.code == 0 and cold.stdout.startswith("Hello there, world of ours!"), cold.stderr
    _, llm = _llm_spans(llmtrace_home)
    assert server.stats.requests == 2 and len(llm) == 2 and all(s.request and s.input_tokens for s in llm)
    assert llm[1].streamed
    server.stats.reset()
    warm = run_cli("run", "-q", str(script), provider, env=env)
    assert warm.stdout == cold.stdout and server.stats.requests == 0


@pytest.mark.parametrize("provider", ["mistral", "groq"])
def test_chat_completions_of_other_clients_are_captured_and_cached(provider, mock_server, llmtrace_home):
    pytest.importorskip(f"langchain_{'mistralai' if provider == 'mistral' else 'groq'}")
    server = mock_server(SCRIPT)
    env = {"MISTRAL_BASE_URL": server.base_url, "MISTRAL_API_KEY": "mk-test-not-a-real-key-0000",
           "GROQ_API_BASE": server.anthropic_base_url, "GROQ_API_KEY": "gsk-test-not-a-real-key-0000"}
    agent = str(AGENTS / "compatible_agent.py")
    cold = run_cli("run", agent, provider, env=env)
    assert cold.code == 0 and cold.stdout.startswith(EXPECTED), cold.stderr
    assert server.stats.requests == 3
    _, llm = _llm_spans(llmtrace_home)
    assert len(llm) == 3 and all(s.request and s.request["messages"] and s.response for s in llm)
    assert llm[0].tool_calls[0]["name"] == "multiply" and llm[0].input_tokens > 0 and llm[2].streamed
    assert b"test-not-a-real-key" not in (llmtrace_home / "traces.db").read_bytes()
    server.stats.reset()
    warm = run_cli("run", agent, provider, env=env)
    assert warm.code == 0 and warm.stdout == cold.stdout and server.stats.requests == 0
