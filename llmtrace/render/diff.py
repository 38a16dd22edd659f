"""`llmtrace diff A B` on a terminal: the totals' deltas, then the steps, a line each, with what
changed under the changed ones."""

from __future__ import annotations

from typing import Any, Iterator

from rich.text import Text

from llmtrace.compare import Change, Step
from llmtrace.ids import short_id
from llmtrace.model import Trace
from llmtrace.render import fmt

_OP = {"same": ("=", "dim"), "changed": ("~", "yellow"), "added": ("+", "green"), "removed": ("-", "red")}
_LABELS = {"llm_calls": "LLM calls", "tool_calls": "tool calls", "input_tokens": "tokens in", "output_tokens": "tokens out",
           "cost": "cost", "errors": "errors", "duration_us": "duration"}


def _value(name: str, v: Any) -> str:
    if v is None:
        return "—"
    if name == "cost":
        return fmt.money(v)
    if name == "duration_us":
        return fmt.duration(v)
    return f"{v:,}"


def _delta(name: str, d: dict[str, Any]) -> Text:
    a, b = d["a"], d["b"]
    text = Text(f"{_LABELS[name]} {_value(name, a)}")
    if a == b:
        return text
    text.append(f" → {_value(name, b)}")
    if a and b is not None and name != "errors":
        pct = (b - a) / a * 100
        text.append(f" ({'+' if pct >= 0 else ''}{pct:.0f}%)", style="yellow")
    elif d["delta"] is not None and name == "errors":
        text.append(f" ({'+' if d['delta'] > 0 else ''}{d['delta']})", style="red" if d["delta"] > 0 else "green")
    return text


def _what(step: Step) -> str:
    s = step.span
    if s.kind in ("llm", "embedding"):
        label = f"{'LLM' if s.kind == 'llm' else 'embedding'} {s.model_requested or s.model or s.name}"
        if s.tool_calls:
            label += "  → " + ", ".join(fmt.call(tc.get("name") or "?", tc.get("args"), 50) for tc in s.tool_calls)
        elif isinstance(s.outputs, dict) and s.outputs.get("content"):
            label += "  → " + fmt.short_json(s.outputs["content"], 60)
        return label
    return f"{s.kind} " + fmt.call(s.name, s.inputs, 60) + (f" → {fmt.short_json(s.outputs, 40)}" if s.status != "error" else "")


def diff_lines(a: Trace, b: Trace, changes: list[Change], deltas: dict[str, dict[str, Any]]) -> Iterator[Text]:
    """The diff's lines; text from the traces is shown as text (fmt.clean)."""
    for line in _diff_lines(a, b, changes, deltas):
        yield fmt.clean(line)


def _diff_lines(a: Trace, b: Trace, changes: list[Change], deltas: dict[str, dict[str, Any]]) -> Iterator[Text]:
    yield Text.assemble(("A ", "bold"), f"{a.name} {short_id(a.id)}  ", (a.status, ""), f"  {fmt.local_time(a.start_us)[:19]}")
    yield Text.assemble(("B ", "bold"), f"{b.name} {short_id(b.id)}  ", (b.status, ""), f"  {fmt.local_time(b.start_us)[:19]}")
    yield Text(" · ").join(_delta(name, d) for name, d in deltas.items())
    counts = {op: sum(c.op == op for c in changes) for op in _OP}
    if counts["same"] == len(changes):
        yield Text(f"no step changed ({fmt.plural(len(changes), 'step')})", style="green")
        return
    yield Text(", ".join(f"{n} {op}" for op, n in counts.items() if n), style="bold")
    for i, c in enumerate(changes, 1):
        mark, style = _OP[c.op]
        step = c.b if c.b is not None else c.a
        assert step is not None
        line = Text(f"{mark} {i:>3}. ", style=style)
        line.append(_what(step), style="dim" if c.op == "same" else "")
        if c.op == "changed":
            if c.a is not None and _what(c.a) != _what(step):
                line.append(f"   (A: {_what(c.a)})", style="dim")
            line.append("   changed: " + ", ".join(c.diffs), style="yellow")
        yield line
        for section, lines in c.diffs.items():
            yield Text(f"        {section}:", style="bold")
            for d in lines:
                yield Text("          " + d, style="red" if d.startswith("-") else "green" if d.startswith("+") else
                           "cyan" if d.startswith("@@") else "")
