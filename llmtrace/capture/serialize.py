"""Turn LangChain and openai objects into plain JSON-like values for storage."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

_MAX_DEPTH = 32


def message_dict(msg: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"role": getattr(msg, "type", "message"), "content": to_jsonable(getattr(msg, "content", None))}
    for attr in ("name", "tool_call_id"):
        value = getattr(msg, attr, None)
        if value:
            out[attr] = value
    tool_calls = getattr(msg, "tool_calls", None)
    if tool_calls:
        out["tool_calls"] = [
            {"name": tc.get("name"), "args": to_jsonable(tc.get("args")), "id": tc.get("id")} for tc in tool_calls
        ]
    return out


def to_jsonable(value: Any, depth: int = 0) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if depth > _MAX_DEPTH:
        return repr(value)[:200]
    d = depth + 1
    if isinstance(value, dict):
        return {str(k): to_jsonable(v, d) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v, d) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    cls = type(value).__name__
    module = type(value).__module__ or ""
    if module.startswith("langchain") and hasattr(value, "content") and hasattr(value, "type"):
        return message_dict(value)
    if hasattr(value, "page_content") and hasattr(value, "metadata"):  # Document
        return {"page_content": value.page_content, "metadata": to_jsonable(value.metadata, d)}
    if cls in ("AgentAction", "AgentActionMessageLog", "ToolAgentAction"):
        return {"tool": value.tool, "tool_input": to_jsonable(value.tool_input, d)}
    if cls == "AgentFinish":
        return {"return_values": to_jsonable(value.return_values, d)}
    if hasattr(value, "to_messages") and callable(value.to_messages):  # PromptValue
        try:
            return {"messages": [message_dict(m) for m in value.to_messages()]}
        except Exception:
            pass
    if hasattr(value, "model_dump") and callable(value.model_dump):
        try:
            return to_jsonable(value.model_dump(mode="json", exclude_none=True), d)
        except Exception:
            pass
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        try:
            return to_jsonable(dataclasses.asdict(value), d)
        except Exception:
            pass
    try:
        return repr(value)[:10_000]
    except Exception:
        return f"<{cls}>"


def parse_json_maybe(text: Any) -> Any:
    if isinstance(text, str):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text
