"""Renderers, second round: undimmed labels, failed calls, more plumbing, the failing path with its stack,
feedback entries, time to first token, retriever documents, tables at narrow widths. All in-process."""

from __future__ import annotations

import io
from datetime import datetime, timezone

from rich.console import Console

from llmtrace.model import Feedback, Span, Totals, Trace
from llmtrace.render import fmt
from llmtrace.render.tables import cost_table, trace_table
from llmtrace.render.tree import is_plumbing, render_tree, tree_lines
from llmtrace.store.queries import CostRow

T0 = int(datetime(2026, 11, 27, 17, 0, tzinfo=timezone.utc).timestamp() * 1e6)
TID = "960c6a2b-0000-4000-8000-000000000001"

STACK = """\
Traceback (most recent call last):
  File "/app/agent.py", line 40, in <module>
    main()
  File "/app/agent.py", line 35, in main
    executor.invoke({"input": q})
  File "/venv/lib/python3.11/site-packages/langchain_core/tools/base.py", line 587, in run
    response = context.run(self._run, *tool_args, **tool_kwargs)
               ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/app/tools.py", line 12, in lookup
    raise KeyError(f"no such thing: {q}")
KeyError: 'no such thing: x'
"""


def _render(renderable, width=120) -> str:
    buf = io.StringIO()
    Console(file=buf, width=width, color_system=None, legacy_windows=False).print(renderable, soft_wrap=True)
    return buf.getvalue()


def _ansi(renderable, width=120) -> str:
    buf = io.StringIO()
    Console(file=buf, width=width, force_terminal=True, color_system="standard", legacy_windows=False).print(renderable, soft_wrap=True)
    return buf.getvalue()


def _trace(**kw) -> Trace:
    base = {"id": TID, "name": "agent.py", "start_us": T0, "end_us": T0 + 2_000_000, "status": "ok", "exit_code": 0,
            "totals": Totals(llm_calls=1, tool_calls=1, input_tokens=150, output_tokens=15, cost=0.000194)}
    return Trace(**{**base, **kw})


def _span(id, parent, kind, name, t, d, **kw) -> Span:
    return Span(id=id, trace_id=TID, parent_id=parent, kind=kind, name=name, start_us=T0 + t, end_us=T0 + t + d, **kw)


def _ok(id, parent, kind, name, t, d, **kw) -> Span:
    return _span(id, parent, kind, name, t, d, status="ok", **kw)


# 1. the guides' dim does not leak into the labels


def test_guides_are_dim_labels_are_not():
    spans = [_ok("a", None, "chain", "AgentExecutor", 10, 1_000_000),
             _ok("t", "a", "tool", "add", 20, 1000, inputs={"a": 1}, outputs=2)]
    out = _ansi(render_tree(_trace(), spans))
    assert out.splitlines()[1:] == [
        "\x1b[2m└── \x1b[0m\x1b[1mchain \x1b[0mAgentExecutor\x1b[2m  1.00s\x1b[0m",
        "\x1b[2m    └── \x1b[0m\x1b[1;35mtool \x1b[0m\x1b[36madd(a=1)\x1b[0m → \x1b[32m2\x1b[0m\x1b[2m  1ms\x1b[0m",
    ]
    console = Console(file=io.StringIO(), width=120, force_terminal=True, color_system="standard")
    for line in list(tree_lines(_trace(), spans))[1:]:
        for seg in console.render(line):
            if seg.text.strip() and not set(seg.text) <= set("│├└─ "):
                assert not (seg.style and seg.style.dim) or seg.text.startswith("  "), seg  # only the durations are dim


# 2. a failed call is `failed`, an unknown model `unpriced`


def test_failed_call_is_not_unpriced():
    spans = [_span("l1", None, "llm", "ChatOpenAI", 10, 300_000, status="error", model_requested="gpt-4o-mini",
                   error_type="RateLimitError", error_message="429 slow down"),
             _ok("l2", None, "llm", "ChatOpenAI", 400_000, 500_000, model="acme-x", input_tokens=10, output_tokens=2)]
    assert _render(render_tree(_trace(), spans)).splitlines()[1:] == [
        "├── LLM gpt-4o-mini  — in / — out  failed  300ms  ✗ RateLimitError: 429 slow down",
        "└── LLM acme-x  10 in / 2 out  unpriced  500ms",
    ]


# 3. more plumbing: structured output's refusal check, LangGraph's router, a formatting lambda


def test_more_plumbing_is_folded():
    spans = [_ok("g", None, "chain", "LangGraph", 0, 2_000_000),
             _ok("c", "g", "chain", "_check_refusal", 10, 100),
             _ok("r", "g", "chain", "tools_condition", 20, 100),
             _ok("f", "g", "chain", "fmt", 30, 400_000),
             _ok("l", "f", "llm", "ChatOpenAI", 40, 300_000, model="gpt-4o-mini", input_tokens=150, output_tokens=15, cost=0.000194),
             _span("f2", "g", "chain", "fmt", 500_000, 100, status="error", error_type="KeyError", error_message="'x'"),
             _ok("t", "g", "tool", "fmt", 600_000, 100, inputs="x", outputs="X")]
    assert [is_plumbing(s) for s in spans] == [False, True, True, True, False, False, False]
    assert _render(render_tree(_trace(), spans)).splitlines()[1:] == [
        "└── chain LangGraph  2.00s",
        "    ├── LLM gpt-4o-mini  150 in / 15 out  $0.000194  300ms",
        "    ├── chain fmt  0ms  ✗ KeyError: 'x'",
        '    └── tool fmt("x") → X  0ms',
    ]


# 4. the failing path in red, the stack of the span that raised


def _failing_run() -> tuple[Trace, list[Span]]:
    trace = _trace(status="error", exit_code=1, error="KeyError: 'no such thing: x'", traceback=STACK)
    err = {"status": "error", "error_type": "KeyError", "error_message": "'no such thing: x'", "metadata": {"traceback": STACK}}
    spans = [_span("a", None, "chain", "AgentExecutor", 10, 1_900_000, **err),
             _ok("l", "a", "llm", "ChatOpenAI", 20, 800_000, model="gpt-4o-mini", input_tokens=150, output_tokens=15, cost=0.000194,
                 tool_calls=[{"name": "lookup", "args": {"q": "x"}}]),
             _span("t", "a", "tool", "lookup", 900_000, 5000, inputs={"q": "x"}, **err),
             _ok("x", None, "tool", "cleanup", 1_950_000, 1000, inputs={}, outputs="done")]
    return trace, spans


FAILING_TREE = """\
agent.py 960c6a2b  error  2.00s  · 1 LLM call · 1 tool call · 150 in / 15 out tokens · $0.000194
KeyError: 'no such thing: x'
├── 1. chain AgentExecutor  1.90s  ✗ KeyError: 'no such thing: x'
│   ├── LLM gpt-4o-mini  150 in / 15 out  $0.000194  800ms  → lookup(q="x")
│   └── tool lookup(q="x")  5ms  ✗ KeyError: 'no such thing: x'
│           File "/app/agent.py", line 35, in main
│             executor.invoke({"input": q})
│           File "/venv/lib/python3.11/site-packages/langchain_core/tools/base.py", line 587, in run
│             response = context.run(self._run, *tool_args, **tool_kwargs)
│           File "/app/tools.py", line 12, in lookup
│             raise KeyError(f"no such thing: {q}")
└── 2. tool cleanup() → done  1ms
"""


def test_failing_path_and_the_stack_of_the_span_that_raised():
    trace, spans = _failing_run()
    assert _render(render_tree(trace, spans)) == FAILING_TREE
    lines = _ansi(render_tree(trace, spans)).splitlines()
    assert "\x1b[31mAgentExecutor\x1b[0m" in lines[2]  # on the way to the error
    assert "\x1b[31mlookup\x1b[0m\x1b[36m(q=\"x\")\x1b[0m" in lines[4]  # the span that raised
    assert "\x1b[31m" not in lines[3] and "\x1b[31m" not in lines[-1]  # neither the call that went well nor the step after
    assert lines[5] == '\x1b[2m│           File "/app/agent.py", line 35, in main\x1b[0m'


def test_a_raising_span_with_children_keeps_the_guide():
    trace, spans = _failing_run()
    spans = [spans[0], spans[1]]  # the executor raised itself, after its LLM call
    assert _render(render_tree(trace, spans)).splitlines()[2:6] == [
        "└── chain AgentExecutor  1.90s  ✗ KeyError: 'no such thing: x'",
        '    │   File "/app/agent.py", line 35, in main',
        '    │     executor.invoke({"input": q})',
        '    │   File "/venv/lib/python3.11/site-packages/langchain_core/tools/base.py", line 587, in run',
    ]


def test_the_scripts_stack_when_no_span_failed():
    trace, spans = _failing_run()
    assert _render(render_tree(trace, spans[3:])) == """\
agent.py 960c6a2b  error  2.00s  · 1 LLM call · 1 tool call · 150 in / 15 out tokens · $0.000194
KeyError: 'no such thing: x'
  File "/app/agent.py", line 35, in main
    executor.invoke({"input": q})
  File "/venv/lib/python3.11/site-packages/langchain_core/tools/base.py", line 587, in run
    response = context.run(self._run, *tool_args, **tool_kwargs)
  File "/app/tools.py", line 12, in lookup
    raise KeyError(f"no such thing: {q}")
└── tool cleanup() → done  1ms
"""


def test_the_scripts_stack_when_the_failed_span_has_none():
    trace, spans = _failing_run()
    spans[2].metadata = {}  # a span that failed without a python exception of its own
    lines = _render(render_tree(trace, spans[2:])).splitlines()
    assert lines[1:4] == ["KeyError: 'no such thing: x'", '  File "/app/agent.py", line 35, in main', '    executor.invoke({"input": q})']
    assert lines[-2:] == ["├── tool lookup(q=\"x\")  5ms  ✗ KeyError: 'no such thing: x'", "└── tool cleanup() → done  1ms"]


def test_frames_of_a_chained_traceback():
    chained = (
        'Traceback (most recent call last):\n  File "a.py", line 1, in f\n    g()\nKeyError: 1\n\n'
        "The above exception was the direct cause of the following exception:\n\n"
        'Traceback (most recent call last):\n  File "a.py", line 5, in <module>\n    f()\n'
        '  File "<string>", line 2, in h\n  File "a.py", line 3, in f\n    raise ValueError() from e\nValueError\n'
    )
    assert fmt.frames(chained, 2) == ['  File "<string>", line 2, in h', '  File "a.py", line 3, in f', "    raise ValueError() from e"]
    assert fmt.frames(None) == [] and fmt.frames("KeyError: 1") == []


# 5. feedback entries


def test_feedback_entries_one_line_each():
    trace = _trace(feedback=[Feedback(7, "good", T0 + 120_000_000), Feedback(-2, None, T0 + 180_000_000),
                             Feedback(0, 'said "hi"\ntwice', T0 + 86_400_000_000)])
    assert _render(render_tree(trace, [], tz=timezone.utc)) == """\
agent.py 960c6a2b  ok  2.00s  · 1 LLM call · 1 tool call · 150 in / 15 out tokens · $0.000194  score +1.7 (3)
feedback +7 "good" 2026-11-27 17:02
feedback -2 2026-11-27 17:03
feedback +0 "said \\"hi\\"\\ntwice" 2026-11-28 17:00
"""


# 6. time to first token of a streamed call


def test_streamed_call_shows_time_to_first_token():
    spans = [_ok("l", None, "llm", "ChatOpenAI", 10, 800_000, model="gpt-4o-mini", input_tokens=150, output_tokens=15, cost=0.000194,
                 streamed=True, first_token_us=T0 + 10 + 120_000, outputs={"content": "Hi."}),
             _ok("m", None, "llm", "ChatOpenAI", 900_000, 800_000, model="gpt-4o-mini", input_tokens=150, output_tokens=15, cost=0.000194,
                 first_token_us=T0 + 900_000 + 120_000)]  # not streamed: no ttft
    assert _render(render_tree(_trace(), spans)).splitlines()[1:] == [
        "├── LLM gpt-4o-mini  150 in / 15 out  $0.000194  800ms  ttft 120ms  → Hi.",
        "└── LLM gpt-4o-mini  150 in / 15 out  $0.000194  800ms",
    ]


# 7. retriever spans and their documents


def test_retriever_line_and_documents_in_full():
    docs = [{"page_content": "LangChain callbacks   report\neach run. " * 10, "metadata": {"source": "a.md", "score": 0.82345}},
            {"page_content": "short note", "metadata": {"source": "b.md"}}]
    spans = [_ok("0197aaaa-0000-7000-8000-00000000beef", None, "retriever", "Notes", 10, 40_000, inputs={"query": "tracing"}, outputs=docs)]
    assert _render(render_tree(_trace(), spans)).splitlines()[1:] == ['└── retriever Notes("tracing") → 2 documents  40ms']
    assert _render(render_tree(_trace(), spans, full=True)).splitlines()[1:] == [
        '└── retriever Notes("tracing") → 2 documents  40ms  span 0000beef',
        "    ├── query: tracing",
        "    ├── doc 1: LangChain callbacks report each run. LangChain callbacks report each run. LangCh…  score 0.823",
        "    └── doc 2: short note",
    ]


# 8. tables at narrow widths: ids, costs and counts whole


def _traces() -> list[Trace]:
    return [
        Trace(id="960c6a2b-1111-4000-8000-000000000001", name="research_agent.py", start_us=T0 - 3_600_000_000,
              end_us=T0 - 3_600_000_000 + 12_340_000, status="ok", tags={"env": "dev"}, feedback=[Feedback(7, "good", T0)],
              totals=Totals(llm_calls=4, tool_calls=3, input_tokens=964, output_tokens=82, cost=0.000194)),
        Trace(id="1f2e3d4c-2222-4000-8000-000000000002", name="math_agent.py", start_us=T0 - 3 * 86_400_000_000,
              end_us=T0 - 3 * 86_400_000_000 + 2_250_000, status="error",
              totals=Totals(llm_calls=12, tool_calls=11, input_tokens=12_345, output_tokens=1_234, cost=0.0123, retries=2)),
        Trace(id="0a1b2c3d-3333-4000-8000-000000000003", name="support_bot_with_a_long_name.py", start_us=T0 - 4 * 86_400_000_000,
              status="running", totals=Totals(llm_calls=1, input_tokens=80, output_tokens=0, cost=0.0, cache_hits=1)),
    ]


LS_80 = """\
id        name          started           status   llm  tools  tokens       cost
960c6a2b  research_ag…  1h 0m ago         ok         4      3   1,046  $0.000194
1f2e3d4c  math_agent.…  2026-11-24 17:00  error     12     11  13,579    $0.0123
0a1b2c3d  support_bot…  2026-11-23 17:00  running    1      0      80         $0
"""


def test_ls_at_80_columns_keeps_ids_costs_and_counts_whole():
    out = _render(trace_table(_traces(), T0, timezone.utc), width=80)
    assert out == LS_80
    for whole in ("960c6a2b", "1f2e3d4c", "0a1b2c3d", "$0.000194", "$0.0123", "13,579", "12     11", "1h 0m ago", "2026-11-24 17:00"):
        assert whole in out


def test_ls_drops_the_started_column_before_cutting_a_cost():
    traces = _traces()
    traces[1].totals.unpriced_calls = 2
    out = _render(trace_table(traces, T0, timezone.utc, width=80), width=80)
    assert out == """\
id        name                status   llm  tools  tokens                   cost
960c6a2b  research_agent.py   ok         4      3   1,046              $0.000194
1f2e3d4c  math_agent.py       error     12     11  13,579  $0.0123 (+2 unpriced)
0a1b2c3d  support_bot_with_…  running    1      0      80                     $0
"""


def _cost_rows() -> list[CostRow]:
    return [CostRow("gpt-4o-mini-2024-07-18", "", 120, 98_765, 4_321, 0.017408, 3, 0.000412, 0),
            CostRow("claude-3-5-haiku", "", 8, 5_000, 700, 0.000194, 0, 0.0, 0),
            CostRow("acme-x", "", 2, 300, 40, 0.0, 0, 0.0, 2)]


COST_60 = """\
model           calls   tok in  tok out       cost  unpriced
gpt-4o-mini-2…    120   98,765    4,321    $0.0174         0
claude-3-5-ha…      8    5,000      700  $0.000194         0
acme-x              2      300       40         $0       2 ⚠
total             130  104,065    5,061    $0.0176         2
"""


def test_cost_at_60_columns_keeps_costs_and_counts_whole():
    out = _render(cost_table(_cost_rows(), "model"), width=60)
    assert out == COST_60
    for whole in ("$0.0174", "$0.000194", "$0.0176", "98,765", "104,065", "2 ⚠"):
        assert whole in out


def test_cost_by_trace_keeps_the_short_id():
    rows = [CostRow(TID, "research_agent.py", 4, 964, 82, 0.000194, 0, 0.0, 0)]
    out = _render(cost_table(rows, "trace"), width=60)
    assert out.splitlines()[1].startswith("960c6a2b resea… ") and "$0.000194" in out


def test_wide_tables_are_unchanged():
    out = _render(trace_table(_traces(), T0, timezone.utc), width=200)
    assert out.splitlines()[0].split() == ["id", "name", "started", "duration", "status", "llm", "tools", "tokens", "cost", "cached",
                                           "retries", "score", "tags"]


# -- top-level steps --------------------------------------------------------------------------------

def _chain_call(n: int, question: str, t: int) -> list[Span]:
    """One `chain.invoke({"question": …})` of an LCEL chain: a RunnableSequence (plumbing) around its LLM call."""
    seq = _ok(f"seq{n}", None, "chain", "RunnableSequence", t, 500_000, inputs={"question": question}, outputs="Fine.")
    llm = _ok(f"llm{n}", f"seq{n}", "llm", "ChatOpenAI", t + 10_000, 400_000, model="gpt-4o-mini", input_tokens=20,
              output_tokens=3, cost=0.00001, outputs={"content": "Fine."})
    return [seq, llm]


def test_separate_invocations_are_numbered_steps_with_their_input():
    spans = _chain_call(1, "How are you?", 0) + _chain_call(2, "And today?", 600_000)
    assert _render(render_tree(_trace(), spans)) == """\
agent.py 960c6a2b  ok  2.00s  · 1 LLM call · 1 tool call · 150 in / 15 out tokens · $0.000194
├── 1. chain RunnableSequence("How are you?")  500ms
│   └── LLM gpt-4o-mini  20 in / 3 out  $0.000010  400ms  → Fine.
└── 2. chain RunnableSequence("And today?")  500ms
    └── LLM gpt-4o-mini  20 in / 3 out  $0.000010  400ms  → Fine.
"""
    # One invocation: no number, and its plumbing folds away as before.
    assert _render(render_tree(_trace(), _chain_call(1, "How are you?", 0))).splitlines()[1:] == [
        "└── LLM gpt-4o-mini  20 in / 3 out  $0.000010  400ms  → Fine."]
