"""Hostile text stays text: what a model, a tool or an imported file puts in a trace reaches no
terminal raw (escapes, C1 controls, NUL, bidi overrides made visible, rich markup shown as written),
in every view: the tree, --full, --timeline, --follow's frame, --grep, diff, cost and ls tables, the
run summary and the HTML page. Normal text comes out as it always did."""

from __future__ import annotations

import io
import os
import re

import pytest
from rich.console import Console
from rich.text import Text

from conftest import AGENTS, last_trace, run_cli, server_env
from hostile import EVERYTHING, HOSTILE, HUGE, check_shown, deep

from llmtrace.compare import compare, totals_delta
from llmtrace.model import Feedback, Span, Totals, Trace
from llmtrace.render import fmt
from llmtrace.render.diff import diff_lines
from llmtrace.render.html import render_html
from llmtrace.render.live import follow_frame
from llmtrace.render.stream import print_lines
from llmtrace.render.summary import plain_summary, run_summary
from llmtrace.render.tables import cost_table, trace_table
from llmtrace.render.timeline import timeline_lines
from llmtrace.render.tree import tree_lines
from llmtrace.store.queries import CostRow

T0 = 1_795_000_000_000_000
TID = "960c6a2b-0000-4000-8000-00000000beef"
LINK = "[link=file:///etc/passwd]x"
STACK = ("Traceback (most recent call last):\n  File \"/app/a.py\", line 3, in <module>\n    boom(\"\x1b]0;t\x07\")\n"
         f"ValueError: {EVERYTHING}\n")


def _console(buf: io.StringIO, width: int = 120) -> Console:
    # Styled, as on a terminal: the only escapes allowed out are rich's own colours.
    return Console(file=buf, width=width, force_terminal=True, color_system="truecolor", legacy_windows=False)


def _ansi(renderable, width: int = 120) -> str:
    buf = io.StringIO()
    _console(buf, width).print(renderable, soft_wrap=True)
    return buf.getvalue()


def _lines(lines) -> str:
    buf = io.StringIO()
    print_lines(_console(buf), lines, pager=False)
    return buf.getvalue()


def _trace(name: str = EVERYTHING, **kw) -> Trace:
    base = dict(id=TID, name=name, start_us=T0, end_us=T0 + 9_000_000, status="error", exit_code=1, error=EVERYTHING,
                traceback=STACK, tags={"team": EVERYTHING, "[bold]k": LINK},
                totals=Totals(llm_calls=2, tool_calls=2, input_tokens=10, output_tokens=5, cost=0.001, errors=1),
                feedback=[Feedback(score=3, comment=EVERYTHING, created_us=T0)])
    return Trace(**{**base, **kw})


def _spans(answer: str = EVERYTHING) -> list[Span]:
    def span(n: int, parent: int | None, kind: str, name: str, **kw) -> Span:
        sid = f"00000000-0000-4000-8000-{n:012d}"
        pid = None if parent is None else f"00000000-0000-4000-8000-{parent:012d}"
        return Span(sid, TID, pid, kind, name, T0 + n * 100_000, T0 + n * 100_000 + 50_000, status="ok", **kw)

    return [
        span(1, None, "chain", "step " + EVERYTHING, inputs={"input": EVERYTHING}, outputs={"output": EVERYTHING},
             tags=[EVERYTHING]),
        span(2, 1, "llm", "ChatOpenAI", model=EVERYTHING, model_requested="gpt\x1b[2J", provider="openai",
             input_tokens=5, output_tokens=2, inputs={"messages": [{"role": "user\x1b]0;r\x07", "content": EVERYTHING}]},
             outputs={"content": answer}, tool_calls=[{"name": "lookup\x9b2J", "args": {"q": EVERYTHING, "deep": deep()}}]),
        span(3, 1, "llm", "ChatOpenAI", model="gpt-4o-mini", input_tokens=5, output_tokens=3,
             outputs={"content": HUGE}, streamed=True, first_token_us=T0 + 310_000),
        span(4, 1, "tool", "lookup[bold]\x1b[2J", inputs={"query": EVERYTHING, "nested": deep()}, outputs=EVERYTHING),
        span(5, 1, "tool", "explode", inputs=EVERYTHING, status_=None) if False else
        Span("00000000-0000-4000-8000-000000000005", TID, "00000000-0000-4000-8000-000000000001", "tool", "explode",
             T0 + 500_000, T0 + 550_000, status="error", error_type="ValueError\x1b[2J", error_message=EVERYTHING,
             inputs=EVERYTHING, metadata={"traceback": STACK}),
        span(6, 1, "retriever", "docs\x00", inputs={"query": EVERYTHING},
             outputs=[{"page_content": EVERYTHING, "metadata": {"score": 0.5}}]),
        span(7, None, "chain", "\u202egnp.exe", inputs=EVERYTHING, outputs=EVERYTHING),
    ]


def _in_flight() -> Span:
    return Span("00000000-0000-4000-8000-000000000009", TID, None, "llm", "ChatOpenAI", T0 + 900_000,
                model_requested="gpt\x1b]52;c;eA==\x07", streamed=True)


@pytest.mark.parametrize("show_all,full", [(False, False), (False, True), (True, True)])
def test_the_tree_shows_hostile_text_as_text(show_all, full):
    out = _lines(tree_lines(_trace(), _spans(), show_all=show_all, full=full))
    check_shown(out, "tree")
    assert "^[[2J" in out and "<U+009B>2J" in out and "^[]8;;file:///etc/passwd" in out
    assert "[bold red]loud[/]" in out  # markup shown as written


def test_the_timeline_shows_hostile_text_as_text():
    out = _lines(timeline_lines(_trace(), _spans(), 120, show_all=True))
    check_shown(out, "timeline")
    assert "^[[2J" in out
    rows = out.splitlines()[2:]  # under the trace's line and its error: the rows, each fitted to the width
    assert all(len(re.sub(r"\x1b\[[0-9;]*m", "", line)) <= 120 for line in rows)  # widths measured as shown


def test_the_follow_frame_shows_hostile_text_as_text():
    out = _ansi(follow_frame(_trace(status="running", end_us=None), [*_spans(), _in_flight()], 1, 60))
    check_shown(out, "follow")
    assert "^[]52;c;eA==" in out


def test_diff_shows_hostile_text_as_text():
    a, b = _trace(), _trace(id=TID.replace("beef", "bee0"))
    # (compare itself cannot take the deepest values: json.dumps runs out of stack; see the report of issue 32)
    shallow = [s for s in _spans() if s.kind != "tool" or s.status == "error"]
    other = [s for s in _spans(answer="other " + EVERYTHING) if s.kind != "tool" or s.status == "error"]
    for s in shallow + other:
        if s.tool_calls:
            s.tool_calls = [{"name": "lookup\x9b2J", "args": {"q": EVERYTHING}}]
    out = _lines(diff_lines(a, b, compare(shallow, other, 1), totals_delta(a, b)))
    check_shown(out, "diff")
    assert "other ^[[2J" in out


def test_tables_show_markup_as_written_and_escapes_made_visible():
    traces = [_trace(name=LINK, tags={"k": "[red]loud[/]"}), _trace(id=TID.replace("beef", "bee1"), name=EVERYTHING, tags={})]
    out = _ansi(trace_table(traces, T0 + 60_000_000, width=200), width=200)
    check_shown(out, "ls")
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out)
    assert LINK in plain and "k=[red]loud[/]" in plain
    rows = [CostRow(EVERYTHING, "", 1, 2, 3, 0.5, 0, 0.0, 0), CostRow("[bold red]loud[/]", "", 1, 2, 3, 0.5, 0, 0.0, 0)]
    for by in ("model", "tag:team"):
        out = _ansi(cost_table(rows, by, width=200), width=200)
        check_shown(out, f"cost --by {by}")
        assert "[bold red]loud[/]" in re.sub(r"\x1b\[[0-9;]*m", "", out)
    rows = [CostRow(TID, EVERYTHING, 1, 2, 3, 0.5, 0, 0.0, 0)]
    check_shown(_ansi(cost_table(rows, "trace", width=200)), "cost --by trace")


def test_the_run_summary_shows_hostile_text_as_text():
    trace = _trace(status="over-budget")
    check_shown(_ansi(run_summary(trace)), "summary")
    plain = plain_summary(trace)
    check_shown(plain, "plain summary")
    assert "stopped: ^[[2J" in plain


def test_the_html_page_holds_no_control_byte_and_no_live_markup():
    page = render_html(_trace(), _spans())
    check_shown(page, "view")
    assert "<script>alert(1)" not in page and "<img src=x" not in page
    assert "\\u009b2J" in page  # the data keeps the text, escaped


def test_every_corpus_entry_alone_through_the_tree_and_tables():
    for label, text in HOSTILE.items():
        spans = [Span("00000000-0000-4000-8000-000000000001", TID, None, "tool", text, T0, T0 + 1, status="ok",
                      inputs={"q": text}, outputs=text)]
        check_shown(_lines(tree_lines(_trace(name=text, error=None), spans, full=True)), label)
        check_shown(_ansi(trace_table([_trace(name=text, tags={"t": text})], T0, width=200)), label)
        check_shown(_lines(timeline_lines(_trace(name=text), spans, 100)), label)


NORMAL = ["math_agent.py", "gpt-4o-mini-2024-07-18", "3 to the fifth power is 243.\nNext line\ttabbed",
          "中文 and emoji 🎉 and café", "a\u200db zero-width joiner stays", "[1, 2, 3] brackets", "windows\r\nline"]


def test_normal_text_is_left_as_it_is():
    for text in NORMAL[:-1]:
        assert fmt.visible(text) is text
        t = Text(text, style="bold")
        assert fmt.clean(t) is t
    assert fmt.visible("windows\r\nline") == "windows\nline"  # what rich showed anyway: it drops the CR


def test_visible_forms_follow_less():
    assert fmt.visible("\x1b[2J\x00\x7f\x9b\u202e\ud800") == "^[[2J^@^?<U+009B><U+202E><U+D800>"
    t = Text("ab")
    t.append("\x1bX", style="red")
    t.append("cd", style="bold")
    c = fmt.clean(t)
    assert c.plain == "ab^[Xcd" and [(s.start, s.end, s.style) for s in c.spans] == [(2, 5, "red"), (5, 7, "bold")]


# --- through the real command line ----------------------------------------------------------------

EVIL = ("\x1b[2J\x1b]8;;file:///etc/passwd\x1b\\click\x1b]8;;\x1b\\ \x1b]52;c;cm0gLXJmIH4K\x07 \x1b]0;owned\x07"
        " \x9b31m [bold red]loud[/] [link=file:///etc/passwd]x[/link] user\u202egnp.exe")
HOSTILE_SCRIPT = {"model": "gpt-4o-mini\x1b]0;model-title\x07\x9b2J",
                  "replies": [{"content": "the answer " + EVIL}]}
STYLED = {"FORCE_COLOR": "1", "TTY_COMPATIBLE": "1", "PAGER": "cat", "LESS": "", "NO_COLOR": ""}


def _cli(*args: str, env: dict[str, str] | None = None):
    r = run_cli(*args, env={**STYLED, **(env or {})})
    assert r.code == 0, r.stderr
    for name, out in (("stdout", r.stdout), ("stderr", r.stderr)):
        check_shown(out, f"llmtrace {' '.join(args)} ({name})")
    return r


def test_every_view_of_a_hostile_run(llmtrace_home, mock_server):
    server = mock_server(HOSTILE_SCRIPT)
    env = server_env(server)
    runs = [_cli("run", "--name", LINK, "--tag", "k=[bold red]loud[/]", str(AGENTS / "hostile_agent.py"), env=env)
            for _ in range(2)]
    assert "done" in runs[0].stdout
    trace, spans = last_trace(llmtrace_home)
    assert any(s.model and "\x1b" in s.model for s in spans)  # the store keeps the text as it was
    assert any(s.status == "error" and "\x1b" in (s.error_message or "") for s in spans)
    shown = _cli("show", "last", "--no-pager").stdout
    assert "^[[2J" in shown and "<U+009B>" in shown
    _cli("show", "last", "--full", "--no-pager")
    _cli("show", "last", "--all", "--full", "--no-pager")
    _cli("show", "last", "--timeline", "--no-pager")
    _cli("show", "last", "--grep", "answer", "--no-pager")
    _cli("diff", "last~1", "last")
    assert "[bold red]loud[/]" in _cli("cost", "--by", "model").stdout + _cli("cost", "--by", "tag:k").stdout
    listed = _cli("ls").stdout
    assert "[link=file:///e" in listed, listed  # (the name column is cut at 120 columns) shown, not a link and "[bold red]loud[/]" in listed
    _cli("show", "last", "--traceback")
    page = _cli("view", "last", "-o", "-").stdout
    assert "<script>alert" not in page
