"""`show --timeline`: the trace as a waterfall on one time axis.

One row per shown span (the tree's folding and numbering), a bar placed at its start and sized to
its duration, so parallel tool calls and `asyncio.gather` fan-outs stand side by side. A streamed
LLM call's bar is light until its first token. Failed spans are red, cache hits cyan.
"""

from __future__ import annotations

import math
from typing import Iterator

from rich.cells import cell_len
from rich.text import Text

from llmtrace.model import Span, Status, Trace
from llmtrace.render import fmt
from llmtrace.render.tree import fit, fold_line, header_lines, layout, step_input

_DURATION = 7  # "999ms", "12.34s", "1m05s"
_KIND_STYLE = {"llm": "blue", "embedding": "blue", "tool": "magenta", "retriever": "yellow", "chain": "white"}
_FULL, _WAIT, _HIT = "█", "░", "▒"
LEGEND = f"{_FULL} span  {_WAIT} waiting for the first token  {_HIT} answered from the cache  red: failed"
SHORT_LEGEND = f"{_FULL} span {_WAIT} before 1st token {_HIT} cache hit red: failed"


def _name(span: Span, step: int | None) -> str:
    if span.kind in ("llm", "embedding"):
        name = f"{'LLM' if span.kind == 'llm' else 'embedding'} {span.model or span.model_requested or span.name}"
    elif span.kind in ("tool", "retriever"):
        args = span.inputs.get("query") if span.kind == "retriever" and isinstance(span.inputs, dict) else span.inputs
        name = f"{span.kind} {fmt.call(span.name, args, 40)}"
    elif step is not None and span.inputs is not None:  # a numbered top-level step: with its input, as in the tree
        name = f"{span.kind} {fmt.call(span.name, step_input(span.inputs), 40)}"
    else:
        name = f"{span.kind} {span.name}"
    return f"{step}. {name}" if step is not None else name


def _clip(text: str, width: int) -> str:
    if cell_len(text) <= width:
        return text + " " * (width - cell_len(text))
    out = ""
    for ch in text:
        if cell_len(out + ch) > width - 1:
            break
        out += ch
    return out + "…" + " " * (width - 1 - cell_len(out))


def _bar(span: Span, t0: int, scale: float, width: int) -> Text:
    end = span.end_us if span.end_us is not None else span.start_us
    x0 = min(width - 1, int((span.start_us - t0) * scale))
    x1 = max(x0 + 1, min(width, math.ceil((end - t0) * scale)))
    bar = Text(" " * x0)
    failed = span.status == Status.ERROR.value
    style = "red" if failed else "cyan" if span.cache_hit else _KIND_STYLE.get(span.kind, "")
    if span.cache_hit:
        bar.append(_HIT * (x1 - x0), style=style)
    elif span.streamed and span.first_token_us is not None:
        xt = min(x1, max(x0, round((span.first_token_us - t0) * scale)))
        bar.append(_WAIT * (xt - x0), style=style)
        bar.append(_FULL * (x1 - xt), style=style)
    else:
        bar.append(_FULL * (x1 - x0), style=style)
    bar.append(" " * (width - x1))
    return bar


def timeline_lines(trace: Trace, spans: list[Span], width: int, *, show_all: bool = False,
                   tail: list[Span] | None = None, hidden: int = 0) -> Iterator[Text]:
    """The waterfall's lines at `width` columns: the trace's line, an axis, one row per shown span, a legend.
    Text from the trace is shown as text (fmt.clean)."""
    for line in _timeline_lines(trace, spans, width, show_all=show_all, tail=tail, hidden=hidden):
        yield fit(fmt.clean(line), width)


def _timeline_lines(trace: Trace, spans: list[Span], width: int, *, show_all: bool,
                    tail: list[Span] | None, hidden: int) -> Iterator[Text]:
    lay = layout(spans, show_all=show_all, tail=tail, hidden=hidden)
    rows = list(lay.walk())
    shown = [s for s, _, _ in rows if s is not None]
    yield from header_lines(trace, width)
    if not shown:
        yield Text("no spans recorded", style="dim")
        return
    t0 = min(s.start_us for s in shown)
    t1 = max(s.end_us if s.end_us is not None else s.start_us for s in shown)
    total = max(1, t1 - t0)
    labels = [prefix + ("└── " if last else "├── ") for _, prefix, last in rows]
    # Made visible before they are measured: `^[` takes two columns where ESC took none.
    names = [lbl + (fmt.visible(_name(s, lay.number.get(s.id))) if s is not None else "…") for (s, _, _), lbl in zip(rows, labels)]
    label_w = min(max(cell_len(n) for n in names), max(16, width * 2 // 5))
    bar_w = max(10, width - label_w - _DURATION - 2)
    scale = bar_w / total
    after = fmt.duration(t0 - trace.start_us) if t0 > trace.start_us else "0ms"
    axis = Text(_clip(f"first step at +{after}", label_w) + " ", style="dim")
    ticks = [fmt.duration(0), fmt.duration(total // 2), fmt.duration(total)]
    scale_line = ticks[0] + " " * max(1, bar_w // 2 - len(ticks[0]) - len(ticks[1]) // 2) + ticks[1]
    scale_line += " " * max(1, bar_w - len(scale_line) - len(ticks[2])) + ticks[2]
    axis.append(scale_line[:bar_w], style="dim")
    yield axis
    for (span, prefix, last), label, name in zip(rows, labels, names):
        if span is None:
            yield Text.assemble((label, "dim"), fold_line(hidden))
            continue
        line = Text()
        line.append(_clip(label, label_w) if cell_len(label) >= label_w else label, style="dim")
        rest = _clip(name[len(label):], max(0, label_w - cell_len(label)))
        line.append(rest, style="red" if span.id in lay.path else "")
        line.append(" ")
        line.append_text(_bar(span, t0, scale, bar_w))
        line.append(" ")
        line.append(f"{fmt.duration(span.duration_us):>{_DURATION}}", style="dim")
        yield line
    yield Text(LEGEND if len(LEGEND) <= width else SHORT_LEGEND, style="dim")
