"""Nothing secret reaches disk; cost is exact for known models and never $0 for unknown ones."""

from __future__ import annotations

import json
import stat

from conftest import AGENTS, last_trace, run_cli, server_env


def _all_bytes(home) -> bytes:
    return b"".join(p.read_bytes() for p in home.rglob("*") if p.is_file())


def test_api_keys_never_reach_disk(llmtrace_home, mock_server):
    server = mock_server()
    key = "sk-proj-RECOGNISABLEtestKEY1234567890abcdef"
    second = "another-Recognisable-Secret-987654321-tail-Z9"
    env = {**server_env(server, key=key), "SECOND_PART": second[: -len("-tail-Z9")]}
    r = run_cli("run", str(AGENTS / "secret_agent.py"), env=env)
    assert r.code == 0, r.stderr
    trace, spans = last_trace(llmtrace_home)
    assert len([s for s in spans if s.kind == "llm"]) == 2
    data = _all_bytes(llmtrace_home)
    assert len(data) > 10_000  # the store (and its WAL) really are there
    for secret in (key, second, key[10:30], second[8:30]):
        assert secret.encode() not in data, f"{secret!r} found on disk"
    assert b"[REDACTED]" in data
    tool = next(s for s in spans if s.kind == "tool")
    assert tool.inputs["api_key"] == "[REDACTED]" and tool.inputs["query"] == "weather"


def test_store_files_are_owner_only(llmtrace_home):
    r = run_cli("run", str(AGENTS / "behaves_like_python.py"))
    assert r.code == 0
    assert stat.S_IMODE(llmtrace_home.stat().st_mode) == 0o700
    for p in llmtrace_home.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) & 0o077 == 0, p


def test_unknown_model_is_unpriced_not_zero(llmtrace_home, mock_server):
    server = mock_server({"model": "acme-private-model-7"})
    r = run_cli("run", str(AGENTS / "lcel_chain.py"), env=server_env(server))
    assert r.code == 0, r.stderr
    trace, spans = last_trace(llmtrace_home)
    llm = [s for s in spans if s.kind == "llm"]
    assert llm and all(s.cost is None and s.input_tokens for s in llm)
    assert trace.totals.unpriced_calls == len(llm)
    assert "5 unpriced" in r.stderr
    shown = run_cli("show", "last")
    assert "unpriced" in shown.stdout


def test_price_override_file(llmtrace_home, mock_server, tmp_path):
    server = mock_server({"model": "acme-private-model-7"})
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"acme-private-model-7": {"input": 1.0, "output": 2.0}}))
    r = run_cli("run", str(AGENTS / "lcel_chain.py"), env={**server_env(server), "LLMTRACE_PRICES": str(prices)})
    assert r.code == 0, r.stderr
    _, spans = last_trace(llmtrace_home)
    for s in (s for s in spans if s.kind == "llm"):
        assert abs(s.cost - (s.input_tokens * 1.0 + s.output_tokens * 2.0) / 1e6) < 1e-12


def test_cost_matches_published_price(math_runs):
    from genai_prices import Usage, calc_price

    run = math_runs["math_agent.py"].cold
    assert run.result.code == 0
    for s in (s for s in run.spans if s.kind == "llm"):
        want = calc_price(Usage(input_tokens=s.input_tokens, output_tokens=s.output_tokens), "gpt-4o-mini-2024-07-18", provider_id="openai")
        assert abs(s.cost - float(want.total_price)) < 1e-12
        # gpt-4o-mini: $0.15 / M in, $0.60 / M out
        assert abs(s.cost - (s.input_tokens * 0.15 + s.output_tokens * 0.60) / 1e6) < 1e-12
