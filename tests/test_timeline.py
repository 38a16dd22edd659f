"""`show --timeline`: exact text at fixed widths, styles, folding; and the parallel sample end to end."""

from __future__ import annotations

from conftest import SAMPLES, run_cli

from llmtrace.model import Span, Totals, Trace
from llmtrace.render.timeline import timeline_lines

T0 = 1_700_000_000_000_000


def _span(i, parent, kind, name, a, b, **kw):
    return Span(id=f"s{i}", trace_id="t", parent_id=parent, kind=kind, name=name, start_us=T0 + a * 1000,
                end_us=T0 + b * 1000, status=kw.pop("status", "ok"), **kw)


SPANS = [
    _span(1, None, "chain", "AgentExecutor", 0, 1000),
    _span(2, "s1", "llm", "ChatOpenAI", 0, 400, model="gpt-4o-mini", streamed=True, first_token_us=T0 + 100_000),
    _span(3, "s1", "tool", "multiply", 400, 450, inputs={"a": 3, "b": 5}, status="error", error_type="ValueError", error_message="bad"),
    _span(4, "s1", "llm", "ChatOpenAI", 450, 460, model="gpt-4o-mini", cache_hit="exact"),
    _span(5, "s1", "tool", "lookup", 500, 800, inputs={"city": "Oslo"}),
    _span(6, "s1", "tool", "lookup", 500, 900, inputs={"city": "Lima"}),
]
TRACE = Trace(id="0d2f7a9c-0000-4000-8000-000000000000", name="agent.py", start_us=T0 - 2_000_000,
              end_us=T0 + 1_000_000, status="error", totals=Totals(llm_calls=2, tool_calls=3))

AT_80 = """\
agent.py 0d2f7a9c  error  3.00s  · 2 LLM calls · 3 tool calls
  · 0 in / 0 out tokens · $0
first step at +2.00s             0ms              500ms            1.00s
└── chain AgentExecutor          ███████████████████████████████████████   1.00s
    ├── LLM gpt-4o-mini          ░░░░████████████                          400ms
    ├── tool multiply(a=3, b=5)                 ███                         50ms
    ├── LLM gpt-4o-mini                           ▒                         10ms
    ├── tool lookup(city="Oslo")                    █████████████          300ms
    └── tool lookup(city="Lima")                    █████████████████      400ms
█ span  ░ waiting for the first token  ▒ answered from the cache  red: failed"""

AT_60 = """\
agent.py 0d2f7a9c  error  3.00s  · 2 LLM calls
  · 3 tool calls · 0 in / 0 out tokens · $0
first step at +2.00s     0ms        500ms      1.00s
└── chain AgentExecutor  ███████████████████████████   1.00s
    ├── LLM gpt-4o-mini  ░░░████████                   400ms
    ├── tool multiply(a…           ███                  50ms
    ├── LLM gpt-4o-mini              ▒                  10ms
    ├── tool lookup(cit…              █████████        300ms
    └── tool lookup(cit…              ████████████     400ms
█ span ░ before 1st token ▒ cache hit red: failed"""


def test_timeline_exact_text_at_80_and_60_columns():
    for width, expected in ((80, AT_80), (60, AT_60)):
        lines = [line.plain for line in timeline_lines(TRACE, SPANS, width)]
        assert "\n".join(lines) == expected
        assert all(len(line) <= width for line in lines)  # the trace's line breaks before a ` · `, the rows fit


def test_timeline_styles_mark_failures_cache_hits_and_first_token():
    rows = list(timeline_lines(TRACE, SPANS, 80))[1:]  # the trace's line takes two lines at 80 columns
    by_name = {r.plain.strip().split("  ")[0].strip("└├─│ "): r for r in rows[2:-1]}

    def styles(row, char):
        return {str(s.style) for s in row.spans if char in row.plain[s.start:s.end]}

    assert "red" in styles(by_name["tool multiply(a=3, b=5)"], "█")  # the failed tool's bar
    assert any("red" in str(s.style) for s in by_name["chain AgentExecutor"].spans)  # on the way to the failure
    assert "cyan" in styles(rows[5], "▒")  # the cache hit
    assert styles(rows[3], "░") == styles(rows[3], "█") == {"blue"}  # LLM: waiting, then streaming


def test_timeline_folds_a_long_run_like_the_tree():
    steps = [_span(i, None, "chain", f"step{i}", i * 10, i * 10 + 5, inputs={"q": i}) for i in (1, 2, 9, 10)]
    lines = [line.plain for line in timeline_lines(TRACE, steps[:2], 80, tail=steps[2:], hidden=6)]
    assert [line.split("  ")[0] for line in lines[3:-1]] == [  # after the trace's two lines and the axis
        '├── 1. chain step1(q=1)', '├── 2. chain step2(q=2)', '├── … 6 more steps (show them: --all-steps, or --steps N) …',
        '├── 9. chain step9(q=9)', '└── 10. chain step10(q=10)']


def test_timeline_of_the_parallel_sample(llmtrace_home):
    r = run_cli("run", "--mock", "--no-cache", str(SAMPLES / "parallel_agent.py"))
    assert r.code == 0, r.stderr
    r = run_cli("show", "--timeline")
    assert r.code == 0, r.stderr
    rows = r.stdout.splitlines()
    llm = [row for row in rows if "LLM gpt-4o-mini" in row]
    tools = [row for row in rows if "tool word_count" in row]
    assert len(llm) == 3 and len(tools) == 3 and max(len(row) for row in rows[1:]) <= 120

    def extent(row, chars):
        cols = [i for i, c in enumerate(row) if c in chars]
        return min(cols), max(cols)

    bars = [extent(row, "░█") for row in llm]
    # The three calls ran at once (asyncio.gather): every bar overlaps every other.
    assert all(a[0] <= b[1] and b[0] <= a[1] for a in bars for b in bars), rows
    assert all("░" in row for row in llm)  # streamed: time to first token marked
    assert all(extent(t, "█")[0] >= min(b[1] for b in bars) - 1 for t in tools)  # each tool after an answer
    assert run_cli("show", "--timeline", "--json").code == 2
