"""The trace tree: agent → LLM calls → tool calls, with LangChain plumbing folded away."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterator

from rich.cells import cell_len
from rich.text import Text

from llmtrace.ids import short_id
from llmtrace.model import Feedback, Span, Status, Trace
from llmtrace.render import fmt
from llmtrace.render.fmt import STATUS_STYLE


_PLUMBING_PREFIXES = ("Runnable", "ChatPromptTemplate", "PromptTemplate", "MessagesPlaceholder")
_PLUMBING_SUFFIXES = ("OutputParser", "Parser", "PromptTemplate")
_GRAPH_PLUMBING = {"model", "tools", "agent", "call_model", "__start__", "__end__", "should_continue"}
_PLUMBING_NAMES = {"_check_refusal", "tools_condition", "fmt"}  # structured output's check, LangGraph's router, a lambda
_FRAMES = 3  # frames of a traceback shown under the span that raised


def is_plumbing(span: Span) -> bool:
    """A chain step that carries no information of its own (its children are shown in its place)."""
    if span.kind != "chain" or span.status == Status.ERROR.value:
        return False
    name = span.name
    if name in _PLUMBING_NAMES or name.startswith(_PLUMBING_PREFIXES) or name.endswith(_PLUMBING_SUFFIXES):
        return True
    if span.metadata.get("langgraph_node") == name and (name in _GRAPH_PLUMBING or name.startswith("_")):
        return True
    return span.parent_id is not None and name in ("LangGraph",)


def _children(spans: list[Span], show_all: bool, keep_top: bool = False) -> dict[str | None, list[Span]]:
    """Each span's shown children (None: the top level). `keep_top`: top-level steps are never folded
    (a script that invokes several chains shows each as a step of its own)."""
    by_id = {s.id: s for s in spans}
    kids: dict[str | None, list[Span]] = {}
    def folded(s: Span) -> bool:
        return not show_all and is_plumbing(s) and not (keep_top and s.parent_id is None)

    for s in spans:
        if folded(s):
            continue
        parent = s.parent_id
        while parent is not None and parent in by_id and folded(by_id[parent]):
            parent = by_id[parent].parent_id
        if parent is not None and parent not in by_id:
            parent = None  # its parent never ended (killed run): show it at the top
        kids.setdefault(parent, []).append(s)
    for v in kids.values():
        v.sort(key=lambda s: (s.start_us, s.id))
    return kids


def _failing(kids: dict[str | None, list[Span]]) -> tuple[set[str], dict[str, Span]]:
    """The spans on the way to an error (the errored ones and their ancestors) and those that raised
    (errored, with no errored child)."""
    parent = {c.id: p for p, cs in kids.items() for c in cs}
    failed = [c for cs in kids.values() for c in cs if c.status == Status.ERROR.value]
    path: set[str] = set()
    for s in failed:
        sid: str | None = s.id
        while sid is not None and sid not in path:
            path.add(sid)
            sid = parent.get(sid)
    raised = {s.id: s for s in failed if not any(c.status == Status.ERROR.value for c in kids.get(s.id, []))}
    return path, raised


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
    if t.cache_hits:
        text.append(f" · {t.cache_hits:,} replayed (saved {fmt.money(t.cost_saved)})", style="cyan")
    if t.retries:
        text.append(f" · {t.retries} {'retry' if t.retries == 1 else 'retries'}", style="yellow")
    if trace.feedback:
        text.append(f"  score {fmt.score(trace.feedback)}", style="bold")
    if trace.tags:
        text.append("  " + " ".join(f"{k}={v}" for k, v in trace.tags.items()), style="cyan")
    if trace.run_id == trace.id:  # a `run --split` run's own record: its calls are in its traces
        text.append(f"  (run split into traces: llmtrace ls --run {short_id(trace.id)})", style="dim")
    elif trace.run_id:
        text.append(f"  (part of run {short_id(trace.run_id)})", style="dim")
    if trace.error:
        text.append(f"\n{trace.error}", style="red")
    return text


def feedback_line(f: Feedback, tz: Any = None) -> Text:
    """`feedback +7 "good" 2026-11-27 17:02`: one entry, its time local (or in `tz`)."""
    text = Text()
    text.append("feedback ", style="bold")
    text.append(f"{f.score:+g}", style="green" if f.score > 0 else "red" if f.score < 0 else "")
    if f.comment:
        text.append(" " + fmt.short_json(json.dumps(f.comment, ensure_ascii=False), 120))
    text.append(" " + fmt.local_time(f.created_us, tz)[:16], style="dim")
    return text


def _money(span: Span) -> Text:
    """What a call cost: `failed` for a call that failed unpriced (nothing billed), `unpriced` for an unknown model."""
    if span.cost is None and span.status == Status.ERROR.value:
        return Text("failed", style="red")
    return Text(fmt.money(span.cost), style="yellow" if span.cost is None else "")


def _call(text: Text, name: str, args: object, limit: int, on_path: bool) -> None:
    """`name(args)` in cyan, its name in red on the way to an error."""
    call = fmt.call(name, args, limit)
    if on_path:
        text.append(call[: len(name)], style="red")
        call = call[len(name):]
    text.append(call, style="cyan")


_KIND_LABEL = {"llm": ("LLM ", "bold blue"), "embedding": ("embedding ", "bold blue"), "tool": ("tool ", "bold magenta"),
               "retriever": ("retriever ", "bold yellow")}


def span_label(span: Span, on_path: bool = False, step: int | None = None) -> Text:
    """One span's line; `on_path`: it failed or holds a span that did (its name in red); `step`: the
    number of a top-level step (then a chain shows its input too)."""
    if span.status == Status.RUNNING.value and span.end_us is None:  # `show --follow`: a span still open
        return _in_flight_label(span, step)
    name_style = "red" if on_path else ""
    text = Text()
    if span.kind == "llm":
        text.append(*_KIND_LABEL["llm"])
        text.append(span.model or span.model_requested or span.name, style=name_style)
        text.append(f"  {fmt.count(span.input_tokens)} in / {fmt.count(span.output_tokens)} out")
        if span.cached_tokens:
            text.append(f" ({span.cached_tokens:,} cached)")
        if span.cache_hit:
            how = {"exact": "replayed", "replay": "replayed from the trace"}.get(span.cache_hit, f"replayed ({span.cache_hit})")
            text.append(f"  {how}, saved {fmt.money(span.cost_saved)}", style="cyan")
        else:
            text.append("  ").append_text(_money(span))
        text.append(f"  {fmt.duration(span.duration_us)}", style="dim")
        if span.streamed and span.first_token_us is not None:
            text.append(f"  ttft {fmt.duration(span.first_token_us - span.start_us)}", style="dim")
        if span.attempts and span.attempts > 1:
            text.append(f"  {span.attempts} attempts", style="yellow")
        out = span.outputs if isinstance(span.outputs, dict) else {}
        if span.tool_calls:
            text.append("  → ")
            text.append(", ".join(fmt.call(tc.get("name") or "?", tc.get("args"), 60) for tc in span.tool_calls), style="cyan")
        elif out.get("content"):
            text.append("  → ")
            text.append(fmt.short_json(out["content"], 160), style="green")
    elif span.kind == "embedding":
        text.append(*_KIND_LABEL["embedding"])
        text.append(span.model or span.model_requested or span.name, style=name_style)
        text.append(f"  {fmt.count(span.input_tokens)} in")
        if span.cache_hit:
            text.append(f"  replayed, saved {fmt.money(span.cost_saved)}", style="cyan")
        else:
            text.append("  ").append_text(_money(span))
        text.append(f"  {fmt.duration(span.duration_us)}", style="dim")
        out = span.outputs if isinstance(span.outputs, dict) else {}
        if out.get("vectors") is not None:
            text.append(f"  → {fmt.plural(out['vectors'], 'vector')}" + (f" × {out['dimensions']}" if out.get("dimensions") else ""),
                        style="green")
    elif span.kind == "tool":
        text.append(*_KIND_LABEL["tool"])
        _call(text, span.name, span.inputs, 70, on_path)
        if span.status != Status.ERROR.value:
            text.append(" → ")
            text.append(fmt.short_json(span.outputs, 60), style="green")
        text.append(f"  {fmt.duration(span.duration_us)}", style="dim")
    elif span.kind == "retriever":
        text.append(*_KIND_LABEL["retriever"])
        query = span.inputs.get("query") if isinstance(span.inputs, dict) else span.inputs
        _call(text, span.name, query, 70, on_path)
        if isinstance(span.outputs, list):
            text.append(f" → {fmt.plural(len(span.outputs), 'document')}", style="green")
        text.append(f"  {fmt.duration(span.duration_us)}", style="dim")
    else:
        text.append(f"{span.kind} ", style="bold")
        if span.metadata.get("llmtrace_resume"):  # a LangGraph graph resumed after interrupt()
            text.append("↻ resume ", style=STATUS_STYLE["paused"])
        if step is not None and span.inputs is not None:
            _call(text, span.name, step_input(span.inputs), 90, on_path)
        else:
            text.append(span.name, style=name_style)
        text.append(f"  {fmt.duration(span.duration_us)}", style="dim")
    if step is not None:
        text = Text.assemble((f"{step}. ", "bold"), text)
    if span.status == Status.ERROR.value:
        text.append(f"  ✗ {span.error_type}: {fmt.short_json(span.error_message or '', 100)}", style="bold red")
    elif span.status == Status.PAUSED.value:  # LangGraph's interrupt(): waiting for a human, not a failure
        text.append(f"  ⏸ paused: {fmt.short_json(span.error_message or '', 100)}", style=STATUS_STYLE["paused"])
    elif span.status not in (Status.OK.value,):
        text.append(f"  [{span.status}]", style=STATUS_STYLE.get(span.status, ""))
    return text


def _in_flight_label(span: Span, step: int | None) -> Text:
    from llmtrace.clock import now_us

    model = span.model_requested if span.kind in ("llm", "embedding") else None
    text = Text.assemble(_KIND_LABEL.get(span.kind, (f"{span.kind} ", "bold")), model or span.name)
    text.append(f"  ⏳ in flight {fmt.duration(max(0, now_us() - span.start_us))}", style="bold yellow")
    if span.streamed and span.first_token_us is not None:
        text.append(f"  ttft {fmt.duration(span.first_token_us - span.start_us)}", style="dim")
    return Text.assemble((f"{step}. ", "bold"), text) if step is not None else text


def root_io(spans: list[Span]) -> tuple[Any, Any] | None:
    """The input and output of a trace whose work is one chain (a split trace: one request), as its
    root shows them: a lone text or message stands for itself; None for any other trace."""
    tops = [s for s in spans if s.parent_id is None]
    if len(tops) != 1 or tops[0].kind != "chain" or (tops[0].inputs is None and tops[0].outputs is None):
        return None
    root = tops[0]
    out = root.outputs
    if isinstance(out, dict) and out.get("__interrupt__"):  # a LangGraph graph paused: what it asks
        out = {"paused": [i.get("value", i) if isinstance(i, dict) else i for i in out["__interrupt__"]]}
    elif isinstance(out, dict) and isinstance(out.get("content"), str):  # a message
        out = out["content"]
    elif isinstance(out, dict) and isinstance(out.get("messages"), list) and out["messages"]:  # a graph's state
        out = step_input({"messages": out["messages"]})
    return step_input(root.inputs), (step_input(out) if out is not None else None)


def io_lines(spans: list[Span], limit: int = 200) -> list[Text]:
    """`input: …` and `output: …` under a trace's line (see root_io)."""
    io = root_io(spans)
    if io is None:
        return []
    labels = ("resume" if tops_resume(spans) else "input", "output")
    return [Text.assemble((f"{label}: ", "bold green" if label == "output" else "bold"), fmt.short_json(value, limit))
            for label, value in zip(labels, io) if value is not None]


def tops_resume(spans: list[Span]) -> bool:
    return any(s.parent_id is None and s.metadata.get("llmtrace_resume") for s in spans)


def span_ref(span_id: str) -> str:
    """The short handle `show --span` accepts: the id's last 8 hex digits (its random part)."""
    return span_id.replace("-", "")[-8:]


def step_input(inputs: Any) -> Any:
    """A step's input as its call shows it: a lone message list or text stands for itself."""
    if isinstance(inputs, dict) and len(inputs) == 1:
        (value,) = inputs.values()
        if isinstance(value, list) and value and isinstance(value[-1], dict) and "content" in value[-1]:
            return value[-1]["content"]  # {"messages": [...]}: the last message says what was asked
        return value if isinstance(value, str) else inputs
    return inputs


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"… [{len(text) - limit:,} more chars]"


def _documents(outputs: Any) -> list[dict[str, Any]] | None:
    """A retriever's documents ({"page_content", "metadata"} each), or None when its output is something else."""
    if isinstance(outputs, list) and all(isinstance(d, dict) and "page_content" in d for d in outputs):
        return outputs
    return None


def _document(i: int, doc: dict[str, Any], chars: int = 80) -> Text:
    """--full, a retriever's document: its first `chars` characters, and its score when it has one."""
    body = " ".join(str(doc.get("page_content") or "").split())
    text = Text.assemble((f"doc {i}: ", "bold green"), body[:chars] + ("…" if len(body) > chars else ""))
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    if meta.get("score") is not None:
        text.append(f"  score {fmt.number(meta['score'])}", style="dim")
    return text


def _details(span: Span, limit: int) -> list[Text]:
    """--full: the prompt and response of an LLM call, the arguments and result of anything else."""
    out: list[Text] = []
    if span.kind == "llm":
        inputs = span.inputs if isinstance(span.inputs, dict) else {}
        for m in inputs.get("messages") or inputs.get("prompts") or []:
            if isinstance(m, dict):
                body = m.get("content")
                body = body if isinstance(body, str) else fmt.short_json(body, limit)
                if not body and m.get("tool_calls"):
                    body = ", ".join(fmt.call(tc.get("name") or "?", tc.get("args"), 200) for tc in m["tool_calls"])
                out.append(Text.assemble((f"{m.get('role', '?')}: ", "bold"), _clip(body or "", limit)))
            else:
                out.append(Text(_clip(str(m), limit)))
        outputs = span.outputs if isinstance(span.outputs, dict) else {}
        if outputs.get("llmtrace_truncated"):
            out.append(Text.assemble(("response: ", "bold green"), fmt.short_json(outputs, limit)))
        elif outputs.get("content"):
            out.append(Text.assemble(("response: ", "bold green"), _clip(str(outputs["content"]), limit)))
    elif span.kind == "retriever" and _documents(span.outputs) is not None:
        query = span.inputs.get("query") if isinstance(span.inputs, dict) else span.inputs
        out.append(Text.assemble(("query: ", "bold"), _clip(fmt.short_json(query, 10**9), limit)))
        out += [_document(i, doc) for i, doc in enumerate(_documents(span.outputs) or [], 1)]
    else:
        if span.inputs is not None:
            out.append(Text.assemble(("input: ", "bold"), _clip(fmt.short_json(span.inputs, 10**9), limit)))
        if span.outputs is not None:
            out.append(Text.assemble(("output: ", "bold green"), _clip(fmt.short_json(span.outputs, 10**9), limit)))
    if span.error_message and span.status != Status.OK.value:
        out.append(Text(_clip(span.error_message, limit), style="red"))
    return out


_GUIDE = "dim"


def _indented(label: Text, first: str, rest: str) -> list[Text]:
    """A (possibly multi-line) label under tree guides: `first` before its first line, `rest` before the others."""
    parts = label.split("\n") if "\n" in label.plain else [label]
    # The guide is a styled span of its own: a Text built with style="dim" would make the whole line faint.
    return [Text.assemble((first if i == 0 else rest, _GUIDE), part) for i, part in enumerate(parts)]


def fit(line: Text, width: int | None) -> Text:
    """`line` cropped to `width` cells with `…` (a terminal would wrap it and break the guides below)."""
    if width is None or line.cell_len <= width:
        return line
    out = line.copy()
    out.truncate(max(1, width), overflow="ellipsis")
    return out


def header_lines(trace: Trace, width: int | None = None) -> list[Text]:
    """The trace's line (and its error's), made visible; at `width`, broken before a ` · ` that would
    not fit rather than cropped (the totals are what a reader looks for), then cropped."""
    out: list[Text] = []
    for line in _indented(fmt.clean(trace_label(trace)), "", ""):
        while width is not None and line.cell_len > width:
            plain = line.plain
            # after the continuation's own "  · " (position 3 on): a cut there would make the same line again
            cut = max((i for i in range(3, len(plain)) if plain.startswith(" · ", i) and cell_len(plain[:i]) <= width),
                      default=0)
            if cut == 0:
                break
            head, tail = line.divide([cut])
            head.rstrip()
            out.append(head)
            line = Text.assemble("  ", tail[1:])
        out.append(fit(line, width))
    return out


def _wrapped(text: Text, width: int) -> list[Text]:
    """`text` cut into pieces of at most `width` cells (details under --full keep all they show)."""
    plain = text.plain
    cuts: list[int] = []
    start, used, space = 0, 0, -1
    for i, ch in enumerate(plain):
        w = cell_len(ch)
        if used + w > width and i > start:
            cut = space + 1 if space > start else i  # after the last space on the line, else mid-word
            cuts.append(cut)
            used = cell_len(plain[cut:i])
            start, space = cut, -1
        if ch == " ":
            space = i
        used += w
    return list(text.divide(cuts)) if cuts else [text]


def render_tree(trace: Trace, spans: list[Span], *, show_all: bool = False, full: bool = False, limit: int = 400,
                tail: list[Span] | None = None, hidden: int = 0, tz: Any = None) -> Text:
    """The tree as one Text, guides drawn like rich's Tree (├── │ └──).

    Built line by line rather than with rich.tree.Tree: a 5,000-span trace renders in a fraction of
    the time, and long lines are left to the terminal to wrap (print with soft_wrap=True).
    """
    return Text("\n").join(list(tree_lines(trace, spans, show_all=show_all, full=full, limit=limit, tail=tail, hidden=hidden, tz=tz)))


def fold_line(hidden: int) -> Text:
    return Text(f"… {fmt.plural(hidden, 'more step')} (show them: --all-steps, or --steps N) …", style="dim")


def _traceback(span: Span) -> str | None:
    return span.metadata.get("traceback") if isinstance(span.metadata, dict) else None


def _stack(lines: list[str], guide: str) -> list[Text]:
    """Traceback frames under a span (or the trace), dim."""
    return [Text(guide + line, style="dim") for line in lines]


@dataclass
class Layout:
    """What a trace shows, and where: each span's shown children (None: the top level, with None
    standing for the hidden steps of a folded run), the numbers of top-level steps, the spans on the
    way to an error and those that raised."""

    kids: dict[str | None, list[Span]]
    top: list[Span | None]
    number: dict[str, int]
    path: set[str]
    raised: dict[str, Span]

    def walk(self) -> Iterator[tuple[Span | None, str, bool]]:
        """(span, guide prefix, is the last of its siblings) in display order; a span's children
        follow it (pushed once the caller has handled it)."""
        stack: list[tuple[Span | None, str, bool]] = [(s, "", i == len(self.top) - 1) for i, s in enumerate(self.top)]
        stack.reverse()
        while stack:
            span, prefix, last = stack.pop()
            yield span, prefix, last
            if span is not None:
                children = self.kids.get(span.id, [])
                below = prefix + ("    " if last else "│   ")
                stack.extend((c, below, i == len(children) - 1) for i, c in reversed(list(enumerate(children))))


def layout(spans: list[Span], *, show_all: bool = False, tail: list[Span] | None = None, hidden: int = 0) -> Layout:
    """The shown tree of `spans` (and of `tail`, a folded run's last steps, after `hidden` steps left out)."""
    # Several top-level invocations of chains or agents: each is a numbered node with its input (folding
    # their plumbing would merge them into one flat list). Bare calls alone need no numbers.
    tops = [s for s in (*spans, *(tail or [])) if s.parent_id is None]
    numbered = len(tops) + hidden > 1 and any(s.kind == "chain" for s in tops)
    kids = _children(spans, show_all, keep_top=numbered)
    top: list[Span | None] = list(kids.get(None, []))
    number = {s.id: i for i, s in enumerate(top, 1) if s.parent_id is None} if numbered else {}
    if tail is not None:
        tail_kids = _children(tail, show_all, keep_top=numbered)
        rest = tail_kids.pop(None, [])
        if numbered:
            number.update({s.id: len(number) + hidden + i for i, s in enumerate(rest, 1) if s.parent_id is None})
        top += [None, *rest]  # None: where the hidden steps would be
        kids.update(tail_kids)
    path, raised = _failing({**kids, None: [s for s in top if s is not None]})
    return Layout(kids, top, number, path, raised)


def tree_lines(trace: Trace, spans: list[Span], *, show_all: bool = False, full: bool = False, limit: int = 400,
               tail: list[Span] | None = None, hidden: int = 0, tz: Any = None, width: int | None = None) -> Iterator[Text]:
    """The tree's lines one by one (each a Text without a newline), for printing as they come.

    A folded tree (a long run's trace): `spans` are those under its first top-level steps, `tail` those
    under its last ones, and a line counting the `hidden` steps between them stands in their place.
    Spans on the way to an error have their names in red; under the one that raised, the last frames
    of its traceback (of the script's, under the trace, when no failed span has one). Feedback times are local, or in `tz`.
    Text from the trace is shown as text (fmt.clean): no escape it holds reaches the terminal.
    At `width` columns no line is longer: the trace's line breaks before a ` · `, a span's line is
    cropped with `…`, and the --full details are cut into lines under their guides.
    """
    for line in _tree_lines(trace, spans, show_all=show_all, full=full, limit=limit, tail=tail, hidden=hidden, tz=tz,
                            width=width):
        yield fit(fmt.clean(line), width)


def _tree_lines(trace: Trace, spans: list[Span], *, show_all: bool, full: bool, limit: int,
                tail: list[Span] | None, hidden: int, tz: Any, width: int | None) -> Iterator[Text]:
    lay = layout(spans, show_all=show_all, tail=tail, hidden=hidden)
    yield from header_lines(trace, width)
    if not any(fmt.frames(_traceback(s)) for s in lay.raised.values()):  # no failed span shows a stack: the script's
        yield from _stack(fmt.frames(trace.traceback, _FRAMES), "")
    for f in trace.feedback:
        yield feedback_line(f, tz)
    if trace.run_id and trace.run_id != trace.id:  # one request of a split run: what it was asked and answered
        yield from io_lines(spans, limit)
    for span, prefix, last in lay.walk():
        if span is None:
            yield Text.assemble((prefix + ("└── " if last else "├── "), _GUIDE), fold_line(hidden))
            continue
        below = prefix + ("    " if last else "│   ")
        label = span_label(span, span.id in lay.path, lay.number.get(span.id))
        if full:
            handle = Text(f"  span {span_ref(span.id)}", style="dim")
            if width is not None and "\n" not in label.plain:  # the handle --span takes stays, the label is cropped
                label = fit(fmt.clean(label), max(10, width - cell_len(below) - handle.cell_len))
            label = label + handle
        yield from _indented(label, prefix + ("└── " if last else "├── "), below)
        children = lay.kids.get(span.id, [])
        details = _details(span, limit) if full else []
        if span.id in lay.raised:
            yield from _stack(fmt.frames(_traceback(span), _FRAMES), below + ("│ " if children or details else "  "))
        if full:
            for i, d in enumerate(details):
                end = i == len(details) - 1 and not children
                first, rest = below + ("└── " if end else "├── "), below + ("    " if end else "│   ")
                if width is None:
                    yield from _indented(d, first, rest)
                    continue
                for j, part in enumerate(_indented(fmt.clean(d), "", "")):
                    # Made visible before it is cut: `^[` takes two columns where ESC took none.
                    for k, piece in enumerate(_wrapped(part, max(10, width - cell_len(rest)))):
                        yield Text.assemble((first if j == 0 and k == 0 else rest, _GUIDE), piece)
