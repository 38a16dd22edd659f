"""The trace tree: agent → LLM calls → tool calls, with LangChain plumbing folded away."""

from __future__ import annotations

from rich.text import Text
from rich.tree import Tree

from llmtrace.ids import short_id
from llmtrace.model import Span, Status, Trace
from llmtrace.render import fmt

STATUS_STYLE = {"ok": "green", "error": "bold red", "running": "yellow", "interrupted": "magenta", "killed": "bold red"}

_PLUMBING_PREFIXES = ("Runnable", "ChatPromptTemplate", "PromptTemplate", "MessagesPlaceholder")
_PLUMBING_SUFFIXES = ("OutputParser", "Parser", "PromptTemplate")
_GRAPH_PLUMBING = {"model", "tools", "agent", "call_model", "__start__", "__end__", "should_continue"}


def is_plumbing(span: Span) -> bool:
    """A chain step that carries no information of its own (its children are shown in its place)."""
    if span.kind != "chain" or span.status == Status.ERROR.value:
        return False
    name = span.name
    if name.startswith(_PLUMBING_PREFIXES) or name.endswith(_PLUMBING_SUFFIXES):
        return True
    if span.metadata.get("langgraph_node") == name and (name in _GRAPH_PLUMBING or name.startswith("_")):
        return True
    return span.parent_id is not None and name in ("LangGraph",)


def _children(spans: list[Span], show_all: bool) -> dict[str | None, list[Span]]:
    by_id = {s.id: s for s in spans}
    kids: dict[str | None, list[Span]] = {}
    for s in spans:
        if not show_all and is_plumbing(s):
            continue
        parent = s.parent_id
        while parent is not None and parent in by_id and not show_all and is_plumbing(by_id[parent]):
            parent = by_id[parent].parent_id
        if parent is not None and parent not in by_id:
            parent = None  # its parent never ended (killed run): show it at the top
        kids.setdefault(parent, []).append(s)
    for v in kids.values():
        v.sort(key=lambda s: (s.start_us, s.id))
    return kids


def trace_label(trace: Trace) -> Text:
    t = trace.totals
    text = Text()
    text.append(trace.name, style="bold")
    text.append(f" {short_id(trace.id)}", style="dim")
    text.append("  ")
    text.append(trace.status, style=STATUS_STYLE.get(trace.status, ""))
    text.append(f"  {fmt.duration(trace.duration_us)}")
    text.append(f"  · {fmt.plural(t.llm_calls, 'LLM call')} · {fmt.plural(t.tool_calls, 'tool call')}")
    text.append(f" · {fmt.count(t.input_tokens)} in / {fmt.count(t.output_tokens)} out tokens")
    text.append(f" · {fmt.money(t.cost, t.unpriced_calls)}")
    if trace.tags:
        text.append("  " + " ".join(f"{k}={v}" for k, v in trace.tags.items()), style="cyan")
    if trace.error:
        text.append(f"\n{trace.error}", style="red")
    return text


def span_label(span: Span) -> Text:
    text = Text()
    if span.kind == "llm":
        text.append("LLM ", style="bold blue")
        text.append(span.model or span.model_requested or span.name)
        text.append(f"  {fmt.count(span.input_tokens)} in / {fmt.count(span.output_tokens)} out")
        if span.cached_tokens:
            text.append(f" ({span.cached_tokens:,} cached)")
        text.append(f"  {fmt.money(span.cost)}", style="yellow" if span.cost is None else "")
        text.append(f"  {fmt.duration(span.duration_us)}", style="dim")
        out = span.outputs if isinstance(span.outputs, dict) else {}
        if span.tool_calls:
            text.append("  → ")
            text.append(", ".join(fmt.call(tc.get("name") or "?", tc.get("args"), 60) for tc in span.tool_calls), style="cyan")
        elif out.get("content"):
            text.append("  → ")
            text.append(fmt.short_json(out["content"], 80), style="green")
    elif span.kind == "tool":
        text.append("tool ", style="bold magenta")
        text.append(fmt.call(span.name, span.inputs, 70), style="cyan")
        if span.status != Status.ERROR.value:
            text.append(" → ")
            text.append(fmt.short_json(span.outputs, 60), style="green")
        text.append(f"  {fmt.duration(span.duration_us)}", style="dim")
    else:
        text.append(f"{span.kind} ", style="bold")
        text.append(span.name)
        text.append(f"  {fmt.duration(span.duration_us)}", style="dim")
    if span.status == Status.ERROR.value:
        text.append(f"  ✗ {span.error_type}: {fmt.short_json(span.error_message or '', 100)}", style="bold red")
    elif span.status not in (Status.OK.value,):
        text.append(f"  [{span.status}]", style=STATUS_STYLE.get(span.status, ""))
    return text


def render_tree(trace: Trace, spans: list[Span], *, show_all: bool = False) -> Tree:
    kids = _children(spans, show_all)
    root = Tree(trace_label(trace), guide_style="dim")

    def add(node: Tree, parent: str | None) -> None:
        for s in kids.get(parent, []):
            add(node.add(span_label(s)), s.id)

    add(root, None)
    return root
