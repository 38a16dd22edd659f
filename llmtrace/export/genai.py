"""Spans as the OpenTelemetry GenAI conventions and OpenInference describe them (for OTLP export).

Pure functions from a stored Span to plain values: messages in the GenAI JSON schema (roles
system / user / assistant / tool; content as `parts`), tool definitions, OpenInference span kinds
and input/output values. `otlp.py` turns them into attributes.

Messages are read from what llmtrace stored for the call: the LangChain message list
(`inputs.messages`, roles `human`/`ai`/…, tool calls as `{name, args, id}`) or the provider body
as sent (OpenAI chat: `tool_calls[].function`, `tool_call_id`). Both are folded into one shape.
"""

from __future__ import annotations

import json
from typing import Any

from llmtrace.model import Span

_ROLES = {
    "system": "system", "developer": "system",
    "human": "user", "user": "user", "HumanMessageChunk": "user",
    "ai": "assistant", "assistant": "assistant", "AIMessageChunk": "assistant", "model": "assistant",
    "tool": "tool", "function": "tool", "ToolMessageChunk": "tool",
}

# OpenInference span kinds (what Phoenix shows in its kind column)
_KINDS = {"llm": "LLM", "tool": "TOOL", "retriever": "RETRIEVER", "embedding": "EMBEDDING"}
_AGENT_NAMES = ("agent", "AgentExecutor", "LangGraph")


def jsons(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _json_or_text(text: Any) -> Any:
    """A tool call's arguments as JSON when they are JSON text, else as they are."""
    if isinstance(text, str):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return jsons(content)


def _call_part(call: dict[str, Any]) -> dict[str, Any]:
    fn = call.get("function") if isinstance(call.get("function"), dict) else None
    name = fn.get("name") if fn else call.get("name")
    args = fn.get("arguments") if fn else call.get("args", call.get("arguments"))
    return {"type": "tool_call", "id": call.get("id"), "name": name, "arguments": _json_or_text(args)}  # GenAI keeps them structured


def _content_parts(content: Any) -> list[dict[str, Any]]:
    if content is None or content == "":
        return []
    if isinstance(content, list):
        parts: list[dict[str, Any]] = []
        for p in content:
            if isinstance(p, str):
                parts.append({"type": "text", "content": p})
            elif isinstance(p, dict) and isinstance(p.get("text"), str):
                parts.append({"type": "text", "content": p["text"]})
            elif isinstance(p, dict) and p.get("type") in ("tool_use", "tool_result", "function_call"):
                continue  # carried as tool_call / tool_call_response parts
            elif p is not None:
                parts.append({"type": "text", "content": _text(p)})
        return parts
    return [{"type": "text", "content": _text(content)}]


def message(m: dict[str, Any]) -> dict[str, Any]:
    """One stored message (LangChain or provider shape) as a GenAI message."""
    role = _ROLES.get(str(m.get("role") or m.get("type") or ""), "user")
    if role == "tool" or m.get("tool_call_id"):
        return {"role": "tool", "parts": [{"type": "tool_call_response", "id": m.get("tool_call_id"),
                                            "response": _text(m.get("content"))}]}
    parts = _content_parts(m.get("content"))
    parts += [_call_part(c) for c in m.get("tool_calls") or [] if isinstance(c, dict)]
    out: dict[str, Any] = {"role": role, "parts": parts}
    if m.get("name") and role != "tool":
        out["name"] = m["name"]
    return out


def input_messages(span: Span) -> list[dict[str, Any]] | None:
    inputs = span.inputs if isinstance(span.inputs, dict) else {}
    if isinstance(inputs.get("messages"), list):
        return [message(m) for m in inputs["messages"] if isinstance(m, dict)]
    if isinstance(inputs.get("prompts"), list):  # a completion-style LLM
        return [{"role": "user", "parts": [{"type": "text", "content": _text(p)}]} for p in inputs["prompts"]]
    return None


def output_messages(span: Span) -> list[dict[str, Any]] | None:
    out = span.outputs if isinstance(span.outputs, dict) else {}
    if not out and not span.tool_calls:
        return None
    text = out.get("content", out.get("text"))
    parts = _content_parts(text if isinstance(text, str) else None)
    parts += [_call_part(c) for c in span.tool_calls or out.get("tool_calls") or [] if isinstance(c, dict)]
    return [{"role": "assistant", "parts": parts, "finish_reason": finish_reason(span)}]


def finish_reason(span: Span) -> str:
    """GenAI finish reasons: stop, length, content_filter, tool_call, error."""
    reason = span.finish_reason or ("error" if span.status == "error" else "stop")
    return {"tool_calls": "tool_call", "tool_use": "tool_call", "function_call": "tool_call", "end_turn": "stop",
            "stop_sequence": "stop", "max_tokens": "length", "completed": "stop",
            "max_output_tokens": "length"}.get(reason, reason)


def tool_definitions(span: Span) -> list[dict[str, Any]] | None:
    """The tools offered to the model, from the request body as sent (or what LangChain bound)."""
    req = span.request if isinstance(span.request, dict) else {}
    tools = req.get("tools") or span.metadata.get("tools")
    if not isinstance(tools, list) or not tools:
        return None
    out = []
    for t in tools:
        if not isinstance(t, dict):
            continue
        fn = t.get("function") if isinstance(t.get("function"), dict) else t
        out.append({"type": "function", "name": fn.get("name"), "description": fn.get("description"),
                    "parameters": fn.get("parameters", fn.get("input_schema"))})
    return out or None


def invocation_parameters(span: Span) -> dict[str, Any] | None:
    """The request's settings, without the messages and tools (which have attributes of their own)."""
    req = span.request if isinstance(span.request, dict) else None
    if req is None:
        params = span.metadata.get("params")
        return dict(params) if isinstance(params, dict) and params else None
    skip = {"messages", "input", "tools", "instructions", "system"}
    return {k: v for k, v in req.items() if k not in skip} or None


def span_kind(span: Span, top_level: bool) -> str:
    """OpenInference kind: LLM / TOOL / RETRIEVER / EMBEDDING; an agent loop is AGENT, other steps CHAIN."""
    if span.kind in _KINDS:
        return _KINDS[span.kind]
    if span.name in _AGENT_NAMES or (top_level and span.name.lower().endswith("agent")):
        return "AGENT"
    if span.name.endswith("PromptTemplate"):
        return "PROMPT"
    return "CHAIN"


def value(data: Any) -> tuple[str, str] | None:
    """(value, mime type) for input.value / output.value: text as text/plain, the rest as JSON."""
    if data is None:
        return None
    if isinstance(data, str):
        return data, "text/plain"
    return jsons(data), "application/json"


def documents(span: Span) -> list[dict[str, Any]]:
    """A retriever's documents as OpenInference document fields."""
    out = []
    for d in span.outputs if isinstance(span.outputs, list) else []:
        if not isinstance(d, dict):
            continue
        meta = d.get("metadata") if isinstance(d.get("metadata"), dict) else {}
        doc = {"content": d.get("page_content", d.get("content"))}
        if meta:
            doc["metadata"] = jsons(meta)
        if d.get("id") or meta.get("id"):
            doc["id"] = str(d.get("id") or meta.get("id"))
        score = meta.get("score", d.get("score"))
        if isinstance(score, (int, float)) and not isinstance(score, bool):
            doc["score"] = float(score)
        out.append(doc)
    return out
