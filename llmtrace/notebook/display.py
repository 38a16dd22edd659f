"""A trace as a notebook output: the `show` tree as text/plain and as text/html, and the full `view`
page inline, all in the output itself (no server, no request: it opens in a saved notebook, offline,
and in nbconvert's HTML).

The page goes into an iframe's `srcdoc`, escaped as an attribute, with `sandbox="allow-scripts"`:
its own script runs (allowed by its hash, render/html.py) in an origin of its own, so nothing in a
trace can reach the notebook, and text of the trace is only ever text, as in `llmtrace view`.
"""

from __future__ import annotations

import html
import io
from typing import Any

WIDTH = 110  # columns of the text tree (a notebook's output area, not a terminal)


def _load(trace_id: str, payloads: bool) -> tuple[Any, list[Any]]:
    from llmtrace.store import open_store
    from llmtrace.store.queries import get_spans, get_trace

    db = open_store(write=False)
    try:
        return get_trace(db, trace_id), get_spans(db, trace_id, payloads=payloads)
    finally:
        db.close()


def _tree_console(color: bool) -> Any:
    from rich.console import Console

    return Console(file=io.StringIO(), record=True, width=WIDTH, color_system="truecolor" if color else None,
                   force_terminal=color, force_jupyter=False, soft_wrap=True)


def tree_text(trace: Any, spans: list[Any]) -> str:
    from llmtrace.render.tree import tree_lines

    console = _tree_console(False)
    for line in tree_lines(trace, spans):
        console.print(line)
    return console.export_text().rstrip("\n")


_TREE_HTML = ('<pre class="llmtrace-tree" style="font-family:Menlo,\'DejaVu Sans Mono\',consolas,monospace;'
              'font-size:12px;line-height:1.35;white-space:pre-wrap;margin:0">{code}</pre>')


def tree_html(trace: Any, spans: list[Any]) -> str:
    """The tree as the terminal colours it; rich escapes every text it exports."""
    from llmtrace.render.tree import tree_lines

    console = _tree_console(True)
    for line in tree_lines(trace, spans):
        console.print(line)
    return console.export_html(inline_styles=True, code_format=_TREE_HTML)


def view_iframe(trace: Any, spans: list[Any], height: int = 640) -> str:
    from llmtrace.render.html import render_html

    page = render_html(trace, spans)
    return (f'<iframe class="llmtrace-view" sandbox="allow-scripts" referrerpolicy="no-referrer" '
            f'style="width:100%;height:{int(height)}px;border:1px solid #ccc;border-radius:4px" '
            f'srcdoc="{html.escape(page, quote=True)}"></iframe>')


class TraceOutput:
    """One trace, shown where IPython shows rich objects: `display(TraceOutput(id))`, or the value of a
    cell. `view="closed"` adds the full page behind a "view" toggle, "open" shows it, None leaves it out."""

    def __init__(self, trace_id: str, view: str | None = "closed"):
        self.trace_id, self.view = trace_id, view

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        trace, spans = _load(self.trace_id, payloads=self.view is not None)
        head = (f'<div class="llmtrace-cell" style="border-left:3px solid #7a7ae0;padding:4px 8px;margin-top:4px">'
                f'<div style="font-size:11px;opacity:.7">llmtrace · '
                f'<code>llmtrace show {html.escape(trace.id[:8])}</code></div>{tree_html(trace, spans)}')
        if self.view == "open":
            head += view_iframe(trace, spans)
        elif self.view == "closed":
            head += ('<details class="llmtrace-details"><summary style="cursor:pointer;font-size:12px">'
                     'full view (messages, tool calls, waterfall)</summary>' + view_iframe(trace, spans) + '</details>')
        return {"text/plain": tree_text(trace, spans), "text/html": head + "</div>"}

    def __repr__(self) -> str:
        trace, spans = _load(self.trace_id, payloads=False)
        return tree_text(trace, spans)
