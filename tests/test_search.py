"""Search: `ls --grep` (a full-text index the store keeps in step with every write path), --model,
--min-cost, --min-duration, and `show --grep`.

Traces go straight into the store with the writer; the index is kept by triggers, so the same
writes a run, an import, a recovery, rm or prune make are what is searched."""

from __future__ import annotations

import json
import sqlite3

from conftest import run_cli
from test_cli_round2 import T0, _sid, _tid, _trace, _writer

from llmtrace.model import Span, Trace
from llmtrace.store import open_store
from llmtrace.store.queries import TraceFilter, list_traces


def _ids(*args: str) -> list[str]:
    """`ls --json` through the CLI: the ids it lists."""
    r = run_cli("ls", "--json", "--limit", "100", *args)
    assert r.code == 0, r.stderr
    return sorted(t["id"] for t in json.loads(r.stdout))


def _found(home, **filters) -> list[str]:
    """The same query in-process (what `ls` runs), for the many cases: no interpreter start-up each."""
    return sorted(t.id for t in list_traces(open_store(home / "traces.db"), TraceFilter(limit=100, **filters)))


def _store(home):
    w = _writer(home)
    _trace(w, 1, spans=[{"inputs": {"messages": [{"role": "human", "content": "What is the weather in Oslo?"}]},
                         "outputs": {"content": "Rainy, 4 °C."}}])
    _trace(w, 2, name="math.py", spans=[
        {"kind": "tool", "name": "multiply", "inputs": {"first_int": 243, "second_int": 36}, "outputs": 8748, "cost": None},
        {"model": "gpt-4o-2024-08-06", "cost": 0.02, "outputs": {"content": "The result is 8748."}}])
    _trace(w, 3, status="error", error="WeatherServiceDown: unreachable",
           spans=[{"kind": "tool", "name": "get_weather", "status": "error", "error_type": "WeatherServiceDown",
                   "error_message": "weather service unreachable while looking up Bergen", "cost": None}])
    return w


def test_grep_finds_prompts_answers_tool_arguments_results_and_errors(llmtrace_home):
    _store(llmtrace_home)
    assert _ids("--grep", "oslo") == [_tid(1)]  # a prompt, any case (through the CLI)
    found = lambda text: _found(llmtrace_home, grep=text)  # noqa: E731
    assert found("rainy") == [_tid(1)]  # an answer
    assert found("8748") == [_tid(2)]  # a tool result and an answer: the trace once
    assert found("243") == [_tid(2)]  # a tool argument
    assert found("weather serv") == [_tid(3)]  # an error; the last word a prefix
    assert found("weather") == [_tid(1), _tid(3)]
    assert found('say "hi" OR NOT') == []  # quotes and operators are text, not syntax
    r = run_cli("ls", "--grep", "nothing-like-this")
    assert r.code == 0 and r.stderr.strip() == "no traces match"
    r = run_cli("ls", "--grep", "  ")
    assert r.code == 2 and "bad --grep" in r.stderr and r.stderr.count("\n") == 1


def test_model_cost_and_duration_filters(llmtrace_home):
    w = _store(llmtrace_home)
    assert _ids("--model", "gpt-4o*", "--min-cost", "0.01") == [_tid(2)]  # through the CLI, combined
    assert _found(llmtrace_home, model="gpt-4o-2024-08-06") == [_tid(2)]
    assert _found(llmtrace_home, model="gpt-4o*") == [_tid(1), _tid(2)]  # a glob: gpt-4o-mini too
    assert _found(llmtrace_home, min_cost=0.01) == [_tid(2)]
    long = _trace(w, 4, start=T0 + 10_000_000, finish=False)
    w.finish_trace(Trace(id=long, name="agent.py", start_us=T0 + 10_000_000, end_us=T0 + 10_000_000 + 3_600_000_000, status="ok"))
    assert _ids("--min-duration", "30min") == [long]
    assert _found(llmtrace_home, min_duration_us=1_000_000, grep="oslo") == [_tid(1)]  # filters combine
    r = run_cli("ls", "--min-duration", "soon")
    assert r.code == 2 and "bad --min-duration" in r.stderr


def test_the_index_follows_deletes_replaces_and_imports(llmtrace_home, tmp_path, monkeypatch):
    w = _store(llmtrace_home)
    # A span written again (INSERT OR REPLACE, as recovery does) is found by its new text only.
    w.write_spans([Span(id=_sid(1, 0), trace_id=_tid(1), parent_id=None, kind="llm", name="ChatOpenAI", start_us=T0,
                        end_us=T0 + 5, status="ok", outputs={"content": "Sunny now."})])
    assert _found(llmtrace_home, grep="sunny") == [_tid(1)] and _found(llmtrace_home, grep="rainy") == []
    assert run_cli("rm", _tid(2)[:8]).code == 0
    assert _found(llmtrace_home, grep="8748") == []
    doc = tmp_path / "t.json"
    assert run_cli("export", _tid(3)[:8], "-o", str(doc)).code == 0
    monkeypatch.setenv("LLMTRACE_HOME", str(tmp_path / "other"))
    assert run_cli("import", str(doc)).code == 0 and _ids("--grep", "bergen") == [_tid(3)]
    db = sqlite3.connect(tmp_path / "other" / "traces.db")
    db.execute("INSERT INTO span_text(span_text) VALUES ('integrity-check')")  # raises if the index is off


def test_show_grep_shows_the_matching_spans_and_the_steps_above_them(llmtrace_home):
    w = _writer(llmtrace_home)
    tid = _trace(w, 5, spans=[
        {"kind": "chain", "name": "AgentExecutor", "inputs": {"input": "square 8748"}, "cost": None},
        {"kind": "tool", "name": "exponentiate", "inputs": {"base": 8748, "exponent": 2}, "outputs": 76527504, "cost": None},
        {"kind": "tool", "name": "multiply", "inputs": {"first_int": 2, "second_int": 3}, "outputs": 6, "cost": None}])
    r = run_cli("show", tid[:8], "--grep", "76527504")
    assert r.code == 0 and r.stderr.strip() == "1 of 3 spans hold '76527504'"
    assert "exponentiate(base=8748, exponent=2) → 76527504" in r.stdout and "multiply" not in r.stdout
    r = run_cli("show", tid[:8], "--grep", "absent")
    assert r.code == 1 and "no span of" in r.stderr


def test_common_words_take_the_other_plan_with_the_same_answer(llmtrace_home, monkeypatch):
    """Past a number of matching spans the query walks traces newest first instead (bench: 0.39 s vs
    1.5 s for a word in 400,000 of 1M spans); both plans must find the same traces."""
    import llmtrace.store.queries as q

    _store(llmtrace_home)
    few = {text: _found(llmtrace_home, grep=text) for text in ("weather", "8748", "oslo", "absent")}
    monkeypatch.setattr(q, "_FEW_HITS", 0)
    assert {text: _found(llmtrace_home, grep=text) for text in few} == few
    assert few["weather"] == [_tid(1), _tid(3)]


def test_without_full_text_search_grep_says_why(llmtrace_home):
    """An SQLite built without FTS5 gets a store without the index (migration 6 skips it): the rest
    works, --grep says why it cannot."""
    _store(llmtrace_home)
    db = sqlite3.connect(llmtrace_home / "traces.db")
    for name in ("span_text_ai", "span_text_ad", "span_text_au"):
        db.execute(f"DROP TRIGGER {name}")
    db.execute("DROP TABLE span_text")
    db.commit()
    r = run_cli("ls", "--grep", "oslo")
    assert r.code == 2 and "FTS5" in r.stderr and r.stderr.count("\n") == 1
    assert run_cli("ls").code == 0 and run_cli("rm", _tid(2)[:8]).code == 0
