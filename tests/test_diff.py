"""`llmtrace diff A B` on real runs of the math agent through the scripted server."""

from __future__ import annotations

import json
import shutil

from conftest import SAMPLES, run_cli

EDITED = "You are a careful mathematician. Show no work."


def _diff(*args):
    r = run_cli("diff", *args, "--json")
    assert r.code == 0, r.stderr
    return json.loads(r.stdout)


def test_diff_of_an_edited_system_prompt_and_of_a_shorter_run(tmp_path, llmtrace_home):
    edited = tmp_path / "math_agent.py"
    edited.write_text((SAMPLES / "math_agent.py").read_text().replace("You are a helpful assistant", EDITED))
    shutil.copy(SAMPLES / "math_agent.mock.json", tmp_path / "math_agent.mock.json")
    assert run_cli("run", "-q", "--mock", str(SAMPLES / "math_agent.py")).code == 0
    assert run_cli("run", "-q", "--mock", str(edited)).code == 0
    # Same agent, a question the scripted model answers at once: one LLM call, no tools.
    assert run_cli("run", "-q", "--mock", str(SAMPLES / "math_agent.py"), "what", "is", "two", "plus", "two").code == 0

    # "I edited the system prompt: what changed in the run?" Exactly the system message of each LLM call.
    d = _diff("last~2", "last~1")
    assert [s["op"] for s in d["steps"]] == ["changed", "same"] * 3 + ["changed"]
    for s in d["steps"][::2]:
        assert s["a"]["kind"] == "llm" and list(s["changes"]) == ["messages"]
        changed = [line for line in s["changes"]["messages"] if line[:1] in "+-"]
        assert changed == ["-system: You are a helpful assistant", f"+system: {EDITED}"]
    assert [s["a"]["name"] for s in d["steps"][1::2]] == ["exponentiate", "multiply", "exponentiate"]
    assert d["differs"] and d["totals"]["llm_calls"]["delta"] == 0 and d["totals"]["input_tokens"]["delta"] > 0

    # "Why did that run cost so much more?" The tool calls and the LLM calls between them are gone.
    d = _diff("last~2", "last")
    ops = [(s["op"], (s["a"] or s["b"])["kind"]) for s in d["steps"]]
    assert ops.count(("removed", "tool")) == 3 and ops.count(("removed", "llm")) == 3
    assert [op for op in ops if op[0] != "removed"] == [("changed", "llm")]
    assert d["totals"]["llm_calls"] == {"a": 4, "b": 1, "delta": -3}
    assert d["totals"]["cost"]["a"] > 3 * d["totals"]["cost"]["b"] > 0

    # A trace against itself: nothing changed; --exit-code says so by the status.
    same = _diff("last", "last")
    assert not same["differs"] and {s["op"] for s in same["steps"]} == {"same"}
    assert run_cli("diff", "last", "last", "--exit-code").code == 0
    assert run_cli("diff", "last~2", "last~1", "--exit-code").code == 1

    # The terminal view: deltas first, unchanged steps one line each, changes as a unified diff.
    text = run_cli("diff", "last~2", "last~1").stdout
    assert "tokens in 964 → " in text and "3 same, 4 changed" in text
    assert f"+system: {EDITED}" in text and "-system: You are a helpful assistant" in text
    assert "=   2. tool exponentiate(base=3, exponent=5) → 243" in text
    assert "no step changed (7 steps)" in run_cli("diff", "last~2", "last~2").stdout


def test_diff_bad_reference_is_one_line(llmtrace_home):
    r = run_cli("diff", "nosuch", "last")
    assert r.code == 2 and "Traceback" not in r.stderr and r.stderr.count("\n") == 1
