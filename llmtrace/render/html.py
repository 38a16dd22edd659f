"""`llmtrace view`: one trace as a self-contained HTML page (tree, waterfall, span panel, search).

Pure: a Trace and its spans in, one HTML string out. The page is `view.html` (markup and styles)
with `view.js` inlined; the trace goes in as one JSON blob in a <script type="application/json">,
escaped so that no text of the trace can end that element. A Content-Security-Policy allows that
one script (by its hash) and no request at all: the page works offline, as a file or an e-mail
attachment, and a prompt carrying `<script>` or `onerror=` can only ever show as text (the script
also puts every text of the trace into the page escaped).

The rows are the tree's (`render.tree.layout` and `span_label`): by default the spans `show` shows,
LangChain plumbing folded away, and a toggle in the page shows every span.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import asdict
from importlib import resources
from typing import Any

from rich.text import Text

from llmtrace.model import VERSION
from llmtrace.ids import short_id
from llmtrace.model import Span, Status, Trace
from llmtrace.render import fmt
from llmtrace.render.tree import Layout, layout, span_label, span_ref

CLIP_CHARS = 20_000  # a longer string in a payload is cut here (the store keeps it whole: `show --span`)
CLIP_DEPTH = 100  # a value nested deeper is cut there (python's and the browser's stacks stay small)
CLIP_ITEMS = 500  # a longer list (a long stream's chunks) keeps its first and last items
_TAIL_ITEMS = 50
_KINDS = {"LLM": "llm", "tool": "tool", "chain": "chain", "retriever": "retriever", "embedding": "embedding"}


def _asset(name: str) -> str:
    return resources.files("llmtrace.render").joinpath(name).read_text(encoding="utf-8")


class _Clipper:
    """Copies JSON values with over-long strings and lists cut, each cut marked in place."""

    def __init__(self) -> None:
        self.clipped = False

    def __call__(self, value: Any, depth: int = 0) -> Any:
        if depth > CLIP_DEPTH and isinstance(value, (dict, list)):  # the page's script walks values recursively too
            self.clipped = True
            return f"… [llmtrace view: nested deeper than {CLIP_DEPTH} levels, clipped]"
        if isinstance(value, str):
            if len(value) <= CLIP_CHARS:
                return value
            self.clipped = True
            return value[:CLIP_CHARS] + f"… [llmtrace view: {len(value) - CLIP_CHARS:,} more characters clipped]"
        depth += 1
        if isinstance(value, dict):
            return {k: self(v, depth) for k, v in value.items()}
        if isinstance(value, list):
            if len(value) <= CLIP_ITEMS:
                return [self(v, depth) for v in value]
            self.clipped = True
            head = CLIP_ITEMS - _TAIL_ITEMS
            note = f"… [llmtrace view: {len(value) - CLIP_ITEMS:,} more items clipped]"
            return [self(v, depth) for v in value[:head]] + [note] + [self(v, depth) for v in value[-_TAIL_ITEMS:]]
        return value


def _css_class(text: str, style: str) -> str:
    """The page's class for a run of a rich label, from the tree's styles (same colours, same meaning)."""
    words = set(style.split())
    if "bold" in words and text.strip() in _KINDS and words <= {"bold", "blue", "magenta", "yellow"}:
        return "k " + _KINDS[text.strip()]  # the kind word: a badge
    if "red" in words:
        return "x" if "bold" in words else "r"
    for colour, cls in (("cyan", "c"), ("green", "g"), ("yellow", "w"), ("dim", "d"), ("bold", "b")):
        if colour in words:
            return cls
    return ""


def label_runs(text: Text) -> list[str]:
    """A rich Text as [text, class, text, class, …]: what the row shows, styled as the terminal styles it."""
    plain = text.plain
    spans = [(s.start, s.end, str(s.style)) for s in text.spans]
    base = str(text.style or "")
    cuts = sorted({0, len(plain), *(a for a, _, _ in spans), *(b for _, b, _ in spans)})
    out: list[str] = []
    for a, b in zip(cuts, cuts[1:]):
        if a >= b:
            continue
        style = " ".join([base, *(st for sa, sb, st in spans if sa <= a and sb >= b)])
        cls = _css_class(plain[a:b], style)
        if out and out[-1] == cls and not cls.startswith("k"):
            out[-2] += plain[a:b]
        else:
            out += [plain[a:b], cls]
    return out


def _money(span: Span) -> str:
    if span.cost is None and span.status == Status.ERROR.value:
        return "failed"
    return fmt.money(span.cost)


def _parents(lay: Layout, index: dict[str, int]) -> dict[str, int]:
    """Each shown span's parent as an index into the page's span list (-1: the top level)."""
    out = {s.id: -1 for s in lay.top if s is not None}
    for parent, kids in lay.kids.items():
        if parent is None:
            continue
        for k in kids:
            out[k.id] = index[parent]
    return out


def _span_data(span: Span, t0: int, clip: _Clipper) -> dict[str, Any]:
    d: dict[str, Any] = {"id": span.id, "k": span.kind, "nm": span.name, "s": span.start_us - t0}
    if span.end_us is not None:
        d["d"] = span.end_us - span.start_us
    if span.status != Status.OK.value:
        d["st"] = span.status
    if span.error_type or span.error_message:
        d["et"], d["em"] = span.error_type, clip(span.error_message)
    meta = dict(span.metadata) if isinstance(span.metadata, dict) else {}
    for key, short in (("traceback", "tb"), ("attempt_log", "al")):
        if key in meta:
            d[short] = clip(meta.pop(key))
    if span.kind in ("llm", "embedding"):
        for key, value in (("mr", span.model_requested), ("m", span.model), ("pv", span.provider),
                           ("ti", span.input_tokens), ("to", span.output_tokens), ("tc", span.cached_tokens),
                           ("tr", span.reasoning_tokens), ("fr", span.finish_reason), ("at", span.attempts),
                           ("hit", span.cache_hit)):
            if value is not None:
                d[key] = value
        d["$"] = _money(span)
        if span.cost_saved is not None:
            d["sv"] = fmt.money(span.cost_saved)
        if span.streamed:
            d["str"] = 1
            if span.first_token_us is not None:
                d["ft"] = span.first_token_us - span.start_us
        if span.tool_calls:
            d["tcs"] = clip(span.tool_calls)
    for key, value in (("in", span.inputs), ("out", span.outputs), ("rq", span.request), ("rs", span.response)):
        if value is not None:
            d[key] = clip(value)
    if meta:
        d["md"] = clip(meta)
    if span.tags:
        d["tg"] = span.tags
    return d


def page_data(trace: Trace, spans: list[Span], *, tail: list[Span] | None = None, hidden: int = 0) -> dict[str, Any]:
    """What the page's script reads: the trace, and every span with its place in the default tree
    (`p`, absent for the top level; `h` when folded away) and in the tree of all spans (`q` when
    different), its step number (`n` / `N`), the row's label runs (`L`), times in µs from the
    trace's start, and its payloads (long strings and lists clipped, `cl` set)."""
    ordered = [*spans, *(tail or [])]  # head then tail: each in (start, id) order, as read
    index = {s.id: i for i, s in enumerate(ordered)}
    shown = layout(spans, tail=tail, hidden=hidden)
    every = layout(spans, show_all=True, tail=tail, hidden=hidden)
    p_shown, p_all = _parents(shown, index), _parents(every, index)
    on_path = shown.path | every.path
    t0 = trace.start_us
    out = []
    for s in ordered:
        clip = _Clipper()
        step = shown.number.get(s.id, every.number.get(s.id))
        d = _span_data(s, t0, clip)
        if s.id in p_shown:
            if p_shown[s.id] != -1:
                d["p"] = p_shown[s.id]
            if p_all.get(s.id, -1) != p_shown[s.id]:
                d["q"] = p_all.get(s.id, -1)
        else:
            d["h"] = 1
            if p_all.get(s.id, -1) != -1:
                d["q"] = p_all[s.id]
        if step is not None:
            d["n"] = step
        if every.number.get(s.id) not in (None, step):
            d["N"] = every.number[s.id]
        if s.id in on_path:
            d["e"] = 1
        d["L"] = label_runs(fmt.clean(span_label(s, s.id in on_path, step)))  # the row reads as the terminal's
        if clip.clipped:
            d["cl"] = 1
        out.append(d)
    t = trace.totals
    totals = asdict(t)
    totals["cost_text"] = fmt.money(t.cost, t.unpriced_calls)
    totals["saved_text"] = fmt.money(t.cost_saved)
    clip = _Clipper()
    return {
        "version": VERSION,
        "clip_chars": CLIP_CHARS,
        "trace": {
            "id": trace.id, "short": short_id(trace.id), "name": trace.name, "script": trace.script, "argv": trace.argv,
            "cwd": trace.cwd, "start_us": trace.start_us, "end_us": trace.end_us, "status": trace.status,
            "exit_code": trace.exit_code, "error": clip(trace.error), "traceback": clip(trace.traceback),
            "pid": trace.pid, "run_id": trace.run_id, "tags": trace.tags, "totals": totals,
            "io": _io(spans, clip),
            "score": fmt.score(trace.feedback) or None,
            "feedback": [{"score": f.score, "comment": f.comment, "created_us": f.created_us} for f in trace.feedback],
        },
        "spans": out,
        "head": len(spans),  # spans[head:] are a long run's last steps: the hidden steps' row goes before them
        "hidden": hidden,
        "refs": [span_ref(s.id) for s in ordered],
    }


# Written as \u escapes (the same JSON string): lone surrogates (not encodable as UTF-8), and DEL, C1
# controls and bidi overrides, so that no raw control byte is in the file (`cat` of it, an editor).
_ESCAPED = re.compile("[\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069\\ud800-\\udfff]")


def _io(spans: list[Span], clip: Any) -> dict[str, Any] | None:
    """The input and output at the trace's root (a split trace's request), for the page's header."""
    from llmtrace.render.tree import root_io

    io = root_io(spans)
    return None if io is None else {"input": clip(io[0]), "output": clip(io[1])}


def script_json(data: Any) -> str:
    """JSON that can sit inside a <script> element: no `<`, `>` or `&` (so no `</script>`, no `<!--`), no
    line separators, no lone surrogates, no control characters (json escapes C0 ones itself)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return _ESCAPED.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def render_html(trace: Trace, spans: list[Span], *, tail: list[Span] | None = None, hidden: int = 0) -> str:
    """The page for `trace`: `spans` with their payloads (a long run's first steps when `tail`, its
    last steps, is given; `hidden` steps between them are counted)."""
    script = _asset("view.js")
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
    parts = {
        "CSP": f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; img-src data:; "
               "base-uri 'none'; form-action 'none'",
        "TITLE": _escape(fmt.visible(f"{trace.name} {short_id(trace.id)} · llmtrace")),
        "SCRIPT": script,
        "DATA": script_json(page_data(trace, spans, tail=tail, hidden=hidden)),
    }
    # One pass: a value is never scanned for markers (a trace's name may hold "{{SCRIPT}}").
    return re.sub(r"\{\{([A-Z]+)\}\}", lambda m: parts[m.group(1)], _asset("view.html"))
