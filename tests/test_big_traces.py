"""Long runs' traces: `show` folds many top-level steps (first and last N, the rest counted), `export`
and `show --json` stream span by span and write exactly what the in-memory document gives.

Stores are written with the store writer (no LangChain); the 200,000-span store comes from
bench/gen_store.py. No timing is asserted here: figures live in docs/benchmarks.md.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest
from rich.console import Console

from conftest import HANG, ROOT, run_cli
from llmtrace.errors import UserError
from llmtrace.export.jsondoc import to_document, write_document
from llmtrace.model import Span, Trace
from llmtrace.redact import Redactor
from llmtrace.render.tree import render_tree
from llmtrace.store import open_store
from llmtrace.store.queries import count_steps, find_span, get_folded_spans, get_spans, get_trace, iter_spans
from llmtrace.store.writer import StoreWriter

T0 = 1_800_000_000_000_000
TRACE_ID = "10ad0000-0000-4000-8000-000000000040"


def _step(trace_id: str, i: int, t: int, prefix: str = "s") -> list[Span]:
    """One agent step as recorded: the executor, an LLM call inside plumbing, a tool call, the answer."""
    step = f"{prefix}{i:02d}"
    root = f"{step}-root"
    return [
        Span(id=root, trace_id=trace_id, parent_id=None, kind="chain", name="AgentExecutor", start_us=t, end_us=t + 900_000,
             status="ok", inputs={"input": f"question {i}"}, outputs={"output": f"{i} times 2 is {2 * i}."}),
        Span(id=f"{step}-seq", trace_id=trace_id, parent_id=root, kind="chain", name="RunnableSequence", start_us=t + 1000,
             end_us=t + 400_000, status="ok"),
        Span(id=f"{step}-llm1", trace_id=trace_id, parent_id=f"{step}-seq", kind="llm", name="ChatOpenAI", start_us=t + 2000,
             end_us=t + 392_000, status="ok", model="gpt-4o-mini-2024-07-18", input_tokens=100 + i, output_tokens=10,
             cost=0.00002, tool_calls=[{"name": "multiply", "args": {"a": i, "b": 2}, "id": f"call{i}"}]),
        Span(id=f"{step}-tool", trace_id=trace_id, parent_id=root, kind="tool", name="multiply", start_us=t + 400_000,
             end_us=t + 400_050, status="ok", inputs={"a": i, "b": 2}, outputs=2 * i),
        Span(id=f"{step}-llm2", trace_id=trace_id, parent_id=root, kind="llm", name="ChatOpenAI", start_us=t + 500_000,
             end_us=t + 800_000, status="ok", model="gpt-4o-mini-2024-07-18", input_tokens=150 + i, output_tokens=12,
             cost=0.00003, outputs={"content": f"{i} times 2 is {2 * i}."}),
    ]


def _long_run(home, steps: int = 40, *, trace_id: str = TRACE_ID, drop: tuple[str, ...] = (), overlap: bool = False) -> StoreWriter:
    """A trace of `steps` top-level steps (1…steps), 5 spans each; `drop`: span ids never written (a killed
    run's unfinished spans); `overlap`: the steps run concurrently, their spans interleaved in time."""
    w = StoreWriter(open_store(home / "traces.db"), Redactor())
    w.start_trace(Trace(id=trace_id, name="long_run.py", start_us=T0, pid=1))
    gap = 10_000 if overlap else 1_000_000
    spans = [s for i in range(1, steps + 1) for s in _step(trace_id, i, T0 + 1000 + (i - 1) * gap) if s.id not in drop]
    w.write_spans(spans)
    w.finish_trace(Trace(id=trace_id, name="long_run.py", start_us=T0, end_us=T0 + steps * 1_000_000 + 1000, status="ok", exit_code=0))
    return w


def _render(renderable, width=110) -> str:
    buf = io.StringIO()
    Console(file=buf, width=width, color_system=None, legacy_windows=False).print(renderable, soft_wrap=True)
    return buf.getvalue()


FOLDED_TREE = """\
long_run.py 10ad0000  ok  40.00s  · 80 LLM calls · 40 tool calls · 11,640 in / 880 out tokens · $0.002000
├── 1. chain AgentExecutor("question 1")  900ms
│   ├── LLM gpt-4o-mini-2024-07-18  101 in / 10 out  $0.000020  390ms  → multiply(a=1, b=2)
│   ├── tool multiply(a=1, b=2) → 2  0ms
│   └── LLM gpt-4o-mini-2024-07-18  151 in / 12 out  $0.000030  300ms  → 1 times 2 is 2.
├── 2. chain AgentExecutor("question 2")  900ms
│   ├── LLM gpt-4o-mini-2024-07-18  102 in / 10 out  $0.000020  390ms  → multiply(a=2, b=2)
│   ├── tool multiply(a=2, b=2) → 4  0ms
│   └── LLM gpt-4o-mini-2024-07-18  152 in / 12 out  $0.000030  300ms  → 2 times 2 is 4.
├── 3. chain AgentExecutor("question 3")  900ms
│   ├── LLM gpt-4o-mini-2024-07-18  103 in / 10 out  $0.000020  390ms  → multiply(a=3, b=2)
│   ├── tool multiply(a=3, b=2) → 6  0ms
│   └── LLM gpt-4o-mini-2024-07-18  153 in / 12 out  $0.000030  300ms  → 3 times 2 is 6.
├── … 34 more steps (show them: --all-steps, or --steps N) …
├── 38. chain AgentExecutor("question 38")  900ms
│   ├── LLM gpt-4o-mini-2024-07-18  138 in / 10 out  $0.000020  390ms  → multiply(a=38, b=2)
│   ├── tool multiply(a=38, b=2) → 76  0ms
│   └── LLM gpt-4o-mini-2024-07-18  188 in / 12 out  $0.000030  300ms  → 38 times 2 is 76.
├── 39. chain AgentExecutor("question 39")  900ms
│   ├── LLM gpt-4o-mini-2024-07-18  139 in / 10 out  $0.000020  390ms  → multiply(a=39, b=2)
│   ├── tool multiply(a=39, b=2) → 78  0ms
│   └── LLM gpt-4o-mini-2024-07-18  189 in / 12 out  $0.000030  300ms  → 39 times 2 is 78.
└── 40. chain AgentExecutor("question 40")  900ms
    ├── LLM gpt-4o-mini-2024-07-18  140 in / 10 out  $0.000020  390ms  → multiply(a=40, b=2)
    ├── tool multiply(a=40, b=2) → 80  0ms
    └── LLM gpt-4o-mini-2024-07-18  190 in / 12 out  $0.000030  300ms  → 40 times 2 is 80.
"""


def test_folded_tree_text(llmtrace_home):
    db = _long_run(llmtrace_home).db
    folded = get_folded_spans(db, TRACE_ID, 3)
    assert folded is not None and (folded.steps, folded.hidden) == (40, 34)
    assert {s.id for s in folded.head} == {s.id for i in (1, 2, 3) for s in _step(TRACE_ID, i, 0)}  # only what is shown is read
    assert _render(render_tree(get_trace(db, TRACE_ID), folded.head, tail=folded.tail, hidden=folded.hidden)) == FOLDED_TREE
    r = run_cli("show", TRACE_ID[:8], "--steps", "3")
    assert r.code == 0 and r.stdout == FOLDED_TREE, r.stderr


def test_folded_tree_is_the_full_tree_without_its_middle(llmtrace_home):
    db = _long_run(llmtrace_home).db
    trace = get_trace(db, TRACE_ID)
    full = _render(render_tree(trace, get_spans(db, TRACE_ID))).splitlines()
    for keep in (1, 5, 19):
        folded = get_folded_spans(db, TRACE_ID, keep)
        lines = _render(render_tree(trace, folded.head, tail=folded.tail, hidden=folded.hidden)).splitlines()
        n = 4 * keep  # lines per step: the executor, two LLM calls, the tool call
        assert lines == full[: 1 + n] + [f"├── … {40 - 2 * keep} more steps (show them: --all-steps, or --steps N) …"] + full[-n:]
    assert get_folded_spans(db, TRACE_ID, 20) is None  # 40 steps are not more than 2 × 20: shown whole


def test_cli_folds_by_default_and_all_shows_every_step(llmtrace_home):
    _long_run(llmtrace_home)
    default = run_cli("show", "last").stdout
    assert default.count("chain AgentExecutor") == 20 and "├── … 20 more steps (show them: --all-steps, or --steps N) …" in default
    every = run_cli("show", "last", "--all").stdout
    assert every.count("chain AgentExecutor") == 40 and "more steps" not in every and every.count("chain RunnableSequence") == 40
    assert run_cli("show", "last", "--steps", "20").stdout.count("chain AgentExecutor") == 40
    full = run_cli("show", "last", "--full", "--steps", "2").stdout
    assert "input: {\"input\": \"question 1\"}" in full and "question 40" in full and "question 3\"" not in full
    handle = full.split("span ")[1].split()[0]
    one = json.loads(run_cli("show", "last", "--span", handle).stdout)
    assert one["id"] == "s01-root" and one["inputs"] == {"input": "question 1"}
    assert json.loads(run_cli("show", "last", "--span", "s40-tool").stdout)["outputs"] == 80
    r = run_cli("show", "last", "--span", "s4")  # the five spans of step 40
    assert r.code == 2 and "spans of trace 10ad0000 match 's4'" in r.stderr
    assert len(json.loads(run_cli("show", "last", "--json").stdout)["spans"]) == 200
    assert run_cli("show", "last", "--steps", "0").code == 2


def test_killed_run_orphans_stay_at_the_top(llmtrace_home):
    """A killed run never wrote its last step's executor: that step's finished spans hang at the top,
    in the folded tree as in the full one."""
    db = _long_run(llmtrace_home, drop=("s40-root", "s40-seq")).db
    folded = get_folded_spans(db, TRACE_ID, 3)
    assert count_steps(db, TRACE_ID) == 39 and folded.hidden == 33
    lines = _render(render_tree(get_trace(db, TRACE_ID), folded.head, tail=folded.tail, hidden=folded.hidden)).splitlines()
    assert lines[-3:] == [
        "├── LLM gpt-4o-mini-2024-07-18  140 in / 10 out  $0.000020  390ms  → multiply(a=40, b=2)",
        "├── tool multiply(a=40, b=2) → 80  0ms",
        "└── LLM gpt-4o-mini-2024-07-18  190 in / 12 out  $0.000030  300ms  → 40 times 2 is 80.",
    ]
    assert lines[-7] == '├── 39. chain AgentExecutor("question 39")  900ms' and "s39-llm2" in {s.id for s in folded.tail}


def test_concurrent_steps_keep_only_their_own_spans(llmtrace_home):
    """Steps that ran at the same time (a batch): a step's time window holds other steps' spans too;
    only those under the shown steps are kept."""
    db = _long_run(llmtrace_home, overlap=True).db
    folded = get_folded_spans(db, TRACE_ID, 3)
    assert {s.id for s in folded.head} == {s.id for i in (1, 2, 3) for s in _step(TRACE_ID, i, 0)}
    assert {s.id for s in folded.tail} == {s.id for i in (38, 39, 40) for s in _step(TRACE_ID, i, 0)}
    assert folded.hidden == 34


def _rich_trace(home, n_steps: int) -> tuple[StoreWriter, str]:
    """A trace with payloads, feedback, tags and text that JSON escapes or keeps as is (quotes, newlines,
    tabs, U+2028, emoji, non-Latin scripts)."""
    w = _long_run(home, n_steps, trace_id="e0e0e0e0-0000-4000-8000-000000000001")
    tid = "e0e0e0e0-0000-4000-8000-000000000001"
    odd = 'line 1\nline 2\t"quoted" \\ back\u2028sep · ünïcødé 日本語 🚀 </script>'
    extra = [Span(id=f"odd{i}", trace_id=tid, parent_id=f"s{1 + i % n_steps:02d}-root", kind="llm", name="ChatOpenAI",
                  start_us=T0 + 5000 + i * 1000, end_us=T0 + 6000 + i * 1000, status="ok", inputs={"messages": [{"role": "human", "content": odd}]},
                  outputs={"content": odd, "nested": {"list": [1, 2.5, None, True, {}, []], "empty": ""}}, tags=["t1"],
                  metadata={"k": odd}, model="m", input_tokens=3, output_tokens=4, cost=1e-7, streamed=True,
                  request={"messages": [{"content": odd}], "temperature": 0.7}, response={"chunks": [{"delta": odd}]})
             for i in range(50)]
    w.write_spans(extra)
    w.db.execute("INSERT INTO feedback (trace_id, score, comment, created_us) VALUES (?, 5, ?, ?)", (tid, odd, T0))
    w.db.execute("INSERT INTO trace_tags (trace_id, key, value) VALUES (?, 'env', ?)", (tid, odd))
    return w, tid


def test_export_streams_the_in_memory_document(llmtrace_home):
    w, tid = _rich_trace(llmtrace_home, 1000)  # 5,050 spans
    empty = "e1e1e1e1-0000-4000-8000-000000000002"
    w.start_trace(Trace(id=empty, name="empty.py", start_us=T0 + 10, pid=1))
    w.finish_trace(Trace(id=empty, name="empty.py", start_us=T0 + 10, end_us=T0 + 20, status="ok", exit_code=0))
    db = w.db
    doc = to_document(get_trace(db, tid), get_spans(db, tid, payloads=True))
    assert len(doc["spans"]) == 5050 and sum(s["request"] is not None for s in doc["spans"]) == 50
    assert doc["trace"]["feedback"][0]["comment"] == doc["trace"]["tags"]["env"] and "日本語" in doc["trace"]["tags"]["env"]
    empty_doc = to_document(get_trace(db, empty), [])

    r = run_cli("export", tid[:8])
    assert r.code == 0 and r.stdout == json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
    both = run_cli("export", tid[:8], empty[:9])
    assert both.stdout == json.dumps([doc, empty_doc], ensure_ascii=False, indent=2) + "\n"
    lines = run_cli("export", empty[:9], tid[:8], "--format", "jsonl").stdout
    assert lines == "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in (empty_doc, doc))
    assert run_cli("show", tid[:8], "--json").stdout == json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    assert json.loads(run_cli("export", empty[:9]).stdout) == empty_doc

    # The writer itself, every layout (nested in an array at other depths, other indents too).
    trace = get_trace(db, tid)
    for kwargs in ({}, {"sort_keys": True}, {"indent": 2}, {"indent": 4, "sort_keys": True}, {"indent": 1, "level": 3}):
        out: list[str] = []
        n = write_document(out.append, trace, iter_spans(db, tid, payloads=True), **kwargs)
        level = kwargs.pop("level", 0)
        expected = json.dumps(doc, ensure_ascii=False, **kwargs)
        if level:
            expected = expected.replace("\n", "\n" + " " * (kwargs["indent"] * level))
        assert n == 5050 and "".join(out) == expected, kwargs


def test_export_to_a_file_and_import_round_trip(llmtrace_home, tmp_path, monkeypatch):
    _, tid = _rich_trace(llmtrace_home, 200)
    first = tmp_path / "one.json"
    r = run_cli("export", tid[:8], "-o", str(first))
    assert r.code == 0 and "wrote 1 trace to" in r.stderr
    monkeypatch.setenv("LLMTRACE_HOME", str(tmp_path / "other"))
    assert run_cli("import", str(first)).code == 0
    second = tmp_path / "two.json"
    assert run_cli("export", tid[:8], "-o", str(second)).code == 0
    assert second.read_bytes() == first.read_bytes()


@pytest.mark.parametrize("argv", [["export", "last"], ["export", "last", "--format", "jsonl"], ["show", "last", "--json"],
                                  ["show", "last", "--all"]])
def test_a_reader_that_goes_away_stops_the_stream_quietly(llmtrace_home, argv):
    """`llmtrace export last | head`: output larger than a pipe holds, the reader leaves after 100 bytes."""
    _rich_trace(llmtrace_home, 400)
    env = {**os.environ, "COLUMNS": "120"}
    p = subprocess.Popen([sys.executable, "-m", "llmtrace", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=str(ROOT))
    assert len(p.stdout.read(100)) == 100
    p.stdout.close()
    err = p.stderr.read()
    assert p.wait(timeout=HANG) == 0 and err == b"", err


def test_find_span_matches_ids_in_sql(llmtrace_home):
    db = _long_run(llmtrace_home, 5).db
    assert find_span(db, TRACE_ID, "s03-tool").outputs == 6
    assert find_span(db, TRACE_ID, "s02-llm2").request is None and find_span(db, TRACE_ID, "s02llm2").id == "s02-llm2"
    with pytest.raises(UserError, match="5 spans of trace 10ad0000 match 'llm1'"):
        find_span(db, TRACE_ID, "llm1")  # ends five ids
    with pytest.raises(UserError, match="no span of trace"):
        find_span(db, TRACE_ID, "zz")


@pytest.fixture(scope="module")
def store_200k(tmp_path_factory):
    sys.path.insert(0, str(ROOT))
    from bench.gen_store import generate_steps

    home = tmp_path_factory.mktemp("long-run-home")
    return home, generate_steps(home, 20_000)


@pytest.mark.soak  # building 200,000 spans takes ~30 s of one worker: the slow step (`pytest -m 'parity or soak'`)
def test_show_of_a_200k_span_trace_finishes(store_200k):
    home, tid = store_200k
    env = {"LLMTRACE_HOME": str(home)}
    r = run_cli("show", tid[:8], env=env, timeout=HANG)
    assert r.code == 0, r.stderr
    assert "· 40,000 LLM calls · 20,000 tool calls" in r.stdout
    assert r.stdout.count("chain AgentExecutor") == 20 and "├── … 19,980 more steps (show them: --all-steps, or --steps N) …" in r.stdout
    lines = r.stdout.splitlines()
    tree = next(i for i, line in enumerate(lines) if line.startswith(("├", "└")))  # the trace's line may break to fit
    assert len(lines) - tree == 20 * 4 + 1
    full = run_cli("show", tid[:8], "--full", "--steps", "1", env=env, timeout=HANG).stdout
    assert "(question 0)" in full and "(question 19999)" in full and "19,998 more steps" in full
    handle = full[full.index("LLM gpt-4o-mini"):].split("span ")[1].split()[0]
    one = json.loads(run_cli("show", tid[:8], "--span", handle, env=env, timeout=HANG).stdout)
    assert one["kind"] == "llm" and one["request"]["stream"] is True
