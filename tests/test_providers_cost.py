"""`--mock` runs are marked and left out of `cost` unless --include-mock; `reprice` prices earlier calls
once their model has a price; `cost` names a model it cannot price as the trace recorded it."""

from __future__ import annotations

import json

from conftest import AGENTS, run_cli, server_env


def _cost(*args: str, env=None) -> dict:
    r = run_cli("cost", "--json", *args, env=env)
    assert r.code == 0, r.stderr
    return json.loads(r.stdout)


def test_mock_runs_are_marked_and_left_out_of_cost(mock_server, llmtrace_home, tmp_path):
    script = tmp_path / "one.py"
    script.write_text((AGENTS / "one_call.py").read_text())
    assert run_cli("run", "-q", "--mock", str(script), "hello").code == 0
    [mocked] = json.loads(run_cli("ls", "--json").stdout)
    assert mocked["tags"] == {"mock": "true"}

    server = mock_server({"model": "gpt-4o-mini-2024-07-18"})
    assert run_cli("run", "-q", str(script), "hello", "--temp", "0.5", env=server_env(server)).code == 0
    assert json.loads(run_cli("ls", "--json").stdout)[0]["tags"] == {}

    default = _cost()
    assert [r["calls"] for r in default["rows"]] == [1] and default["mock_calls_left_out"] == 1
    r = run_cli("cost")
    assert "1 call of --mock runs left out (--include-mock to count them)" in r.stderr
    both = _cost("--include-mock")
    assert [r["calls"] for r in both["rows"]] == [2] and both["mock_calls_left_out"] == 0
    assert both["rows"][0]["cost"] == 2 * default["rows"][0]["cost"] > 0


def test_reprice_prices_earlier_calls_of_a_newly_priced_model(mock_server, llmtrace_home):
    server = mock_server({"model": "house-model-7b", "replies": [{"content": "hi there"}]})
    env = server_env(server)
    for n in range(3):
        assert run_cli("run", "-q", "--no-cache", str(AGENTS / "one_call.py"), f"hello {n}", env=env).code == 0
    before = _cost()
    [row] = before["rows"]
    assert row["key"] == "house-model-7b" and row["unpriced_calls"] == 3 and row["cost"] == 0
    assert "3 calls could not be priced" in run_cli("cost").stderr

    r = run_cli("reprice")
    assert r.code == 0 and "0 changed" in r.stderr and "house-model-7b (3)" in r.stderr, r.stderr

    (llmtrace_home / "prices.json").write_text(json.dumps({"house-model-7b": {"input": 1.0, "output": 2.0}}))
    r = run_cli("reprice", "--json")
    out = json.loads(r.stdout)
    assert out["changed"] == out["newly_priced"] == 3 and out["traces"] == 3 and out["unpriced"] == {}
    [row] = _cost()["rows"]
    tokens_in, tokens_out = row["input_tokens"], row["output_tokens"]
    assert row["unpriced_calls"] == 0 and tokens_in > 0
    assert abs(row["cost"] - (tokens_in * 1.0 + tokens_out * 2.0) / 1e6) < 1e-12
    traces = json.loads(run_cli("ls", "--json").stdout)
    assert all(t["totals"]["unpriced_calls"] == 0 and t["totals"]["cost"] > 0 for t in traces)
    assert abs(sum(t["totals"]["cost"] for t in traces) - row["cost"]) < 1e-12
    # Run again: nothing changes.
    assert json.loads(run_cli("reprice", "--json").stdout)["changed"] == 0
    # One trace at a time; the same prices again change nothing, a new price changes that trace alone.
    (llmtrace_home / "prices.json").write_text(json.dumps({"house-model-7b": {"input": 3.0, "output": 2.0}}))
    out = json.loads(run_cli("reprice", "last", "--json").stdout)
    assert out["calls"] == 1 and out["changed"] == 1 and out["newly_priced"] == 0
    bad = run_cli("reprice", "last", "--since", "1d")
    assert bad.code == 2 and bad.stderr.count("\n") == 1


def test_cost_names_a_model_without_a_name_by_its_class(llmtrace_home, tmp_path):
    script = tmp_path / "fake.py"
    script.write_text(
        "from langchain_core.language_models.fake_chat_models import FakeListChatModel\n"
        "print(FakeListChatModel(responses=['a', 'b']).invoke('hi').content)\n"
    )
    assert run_cli("run", "-q", str(script)).code == 0
    [row] = _cost()["rows"]
    assert row["key"] == "FakeListChatModel" and row["unpriced_calls"] == 1


FAKE_LOOP = """
import sys
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from llmtrace import BudgetExceeded

llm = FakeListChatModel(responses=["ok"])
n = 0
try:
    while n < 10:
        if "--stream" in sys.argv:
            "".join(c.content for c in llm.stream(f"step {n}"))
        else:
            llm.invoke(f"step {n}")
        n += 1
except BudgetExceeded as e:
    print(f"stopped after {n} calls: {e}")
print(f"made {n} calls")
"""


def test_max_calls_holds_for_a_callback_only_model(llmtrace_home, tmp_path):
    script = tmp_path / "fake_loop.py"
    script.write_text(FAKE_LOOP)
    plain = run_cli("run", "-q", str(script))
    assert plain.code == 0 and "made 10 calls" in plain.stdout
    for extra in ([], ["--stream"]):
        r = run_cli("run", "--max-calls", "2", str(script), *extra)
        assert r.code == 0, r.stderr
        assert "stopped after 2 calls: llmtrace budget --max-calls 2 reached after 2 LLM calls" in r.stdout
        assert "Error in TraceHandler" not in r.stderr and "stopped: llmtrace budget --max-calls 2" in r.stderr
        doc = json.loads(run_cli("show", "last", "--json").stdout)
        assert doc["trace"]["status"] == "over-budget"
        llm = [s for s in doc["spans"] if s["kind"] == "llm"]
        assert [s["status"] for s in llm] == ["ok", "ok", "error"] and llm[2]["error_type"] == "BudgetExceeded"
