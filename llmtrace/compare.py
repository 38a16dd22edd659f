"""Two traces side by side (`llmtrace diff`): their steps aligned, and what changed in each.

A step is an LLM, embedding, tool or retriever span, in start order; chains only hold them. Steps
are matched in order and by what they are (the model asked for, the tool's name), as `diff` matches
lines, so an extra tool call shows as an insertion, not as every later step changed. For a matched
pair each section — prompt messages, response (text or tool calls), parameters, tools offered;
tool arguments, result, error — is compared as text lines; ids that differ from run to run (call
ids, response ids) are left out. Pure: spans in, changes out.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Any

from llmtrace.export import genai
from llmtrace.model import Span, Trace

STEP_KINDS = ("llm", "embedding", "tool", "retriever")
TOTALS = ("llm_calls", "tool_calls", "input_tokens", "output_tokens", "cost", "errors")


@dataclass
class Step:
    span: Span
    key: str  # what it is: "llm gpt-4o-mini", "tool multiply"
    sections: dict[str, list[str]]


@dataclass
class Change:
    op: str  # same, changed, added (only in B), removed (only in A)
    a: Step | None
    b: Step | None
    diffs: dict[str, list[str]] = field(default_factory=dict)  # section → unified diff lines (changed only)


def _json_lines(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return value.splitlines() or [""]
    try:
        return json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False, default=str).splitlines()
    except (RecursionError, ValueError):  # nested past the stack (hostile or damaged): compared as its text
        return [repr(value)[:10_000]]


def _message_lines(messages: list[dict[str, Any]] | None) -> list[str]:
    out: list[str] = []
    for m in messages or []:
        role = m.get("role", "?")
        for part in m.get("parts", []):
            kind = part.get("type")
            if kind == "text":
                text = str(part.get("content", "")).splitlines() or [""]
                out.append(f"{role}: {text[0]}")
                out += [f"  {line}" for line in text[1:]]
            elif kind == "tool_call":
                args = json.dumps(part.get("arguments"), sort_keys=True, ensure_ascii=False, default=str)
                out.append(f"{role} → {part.get('name')}({args})")
            elif kind == "tool_call_response":
                out.append(f"tool result: {part.get('response')}")
    return out


def step(span: Span) -> Step:
    s: dict[str, list[str]] = {}
    if span.kind == "llm":
        key = f"llm {span.model_requested or span.model or span.name}"
        s["messages"] = _message_lines(genai.input_messages(span))
        s["response"] = _message_lines(genai.output_messages(span))
        params = genai.invocation_parameters(span) or {}
        s["parameters"] = _json_lines({k: v for k, v in params.items() if k not in ("stream", "stream_options")} or None)
        s["tools offered"] = [str(t.get("name")) for t in genai.tool_definitions(span) or []]
    elif span.kind == "embedding":
        key = f"embedding {span.model_requested or span.model or span.name}"
        s["input"] = _json_lines(span.inputs)
    else:
        key = f"{span.kind} {span.name}"
        s["arguments"] = _json_lines(span.inputs)
        s["result"] = _json_lines(span.outputs)
    if span.status == "error":
        s["error"] = [f"{span.error_type}: {span.error_message}"]
    return Step(span, key, {k: v for k, v in s.items() if v})


def steps(spans: list[Span]) -> list[Step]:
    return [step(s) for s in sorted(spans, key=lambda s: (s.start_us, s.id)) if s.kind in STEP_KINDS]


def _diff(a: list[str], b: list[str], context: int) -> list[str]:
    return [line for line in difflib.unified_diff(a, b, lineterm="", n=context) if not line.startswith(("---", "+++"))]


def section_diffs(a: dict[str, list[str]], b: dict[str, list[str]], context: int = 1) -> dict[str, list[str]]:
    """Section → unified diff lines, for the sections (in order of appearance) whose lines differ."""
    return {name: _diff(a.get(name, []), b.get(name, []), context)
            for name in dict.fromkeys([*a, *b]) if a.get(name, []) != b.get(name, [])}


def compare(spans_a: list[Span], spans_b: list[Span], context: int = 1) -> list[Change]:
    a, b = steps(spans_a), steps(spans_b)
    out: list[Change] = []
    matcher = difflib.SequenceMatcher(a=[x.key for x in a], b=[x.key for x in b], autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            for x, y in zip(a[i1:i2], b[j1:j2]):
                diffs = section_diffs(x.sections, y.sections, context)
                out.append(Change("changed" if diffs else "same", x, y, diffs))
        else:  # replace, delete, insert: steps of another kind stay whole on each side
            out += [Change("removed", x, None) for x in a[i1:i2]]
            out += [Change("added", None, y) for y in b[j1:j2]]
    return out


def totals_delta(a: Trace, b: Trace) -> dict[str, dict[str, Any]]:
    out = {name: {"a": getattr(a.totals, name), "b": getattr(b.totals, name)} for name in TOTALS}
    out["duration_us"] = {"a": a.duration_us, "b": b.duration_us}
    for v in out.values():
        v["delta"] = None if v["a"] is None or v["b"] is None else v["b"] - v["a"]
    return out
