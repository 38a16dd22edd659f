"""Turn LangChain and openai objects into plain JSON-like values for storage."""

from __future__ import annotations

import dataclasses
import functools
import json
from typing import Any

_MAX_DEPTH = 32
_MISSING = object()
_MESSAGE_ATTRS = ("name", "tool_call_id", "tool_calls")


@functools.lru_cache(maxsize=1024)
def _extra_only(cls: type) -> tuple[bool, ...]:
    """For each of _MESSAGE_ATTRS, True when on `cls` only pydantic's __getattr__ can find it (no
    field, no class attribute). getattr(msg, "tool_calls", None) on a HumanMessage raises and catches
    an AttributeError inside pydantic (~5 µs); _message_attrs reads the same places without it."""
    try:
        from pydantic import BaseModel

        model = (isinstance(cls, type) and issubclass(cls, BaseModel) and cls.__getattr__ is BaseModel.__getattr__
                 and cls.__getattribute__ is object.__getattribute__)
        return tuple(
            model and name not in cls.__pydantic_fields__ and name not in (cls.__private_attributes__ or {})
            and not hasattr(cls, name)
            for name in _MESSAGE_ATTRS
        )
    except Exception:
        return (False,) * len(_MESSAGE_ATTRS)


def _message_attrs(msg: Any) -> list[Any]:
    """getattr(msg, attr, None) for each of _MESSAGE_ATTRS, reading what getattr would read."""
    flags = _extra_only(type(msg))
    if not any(flags):
        return [getattr(msg, name, None) for name in _MESSAGE_ATTRS]
    extra: Any = _MISSING
    values = []
    for name, extra_only in zip(_MESSAGE_ATTRS, flags):
        if not extra_only:
            values.append(getattr(msg, name, None))
            continue
        # The lookup getattr makes: the instance dict, then (pydantic's __getattr__) the extra fields.
        value = msg.__dict__.get(name, _MISSING)
        if value is _MISSING:
            if extra is _MISSING:
                try:
                    extra = object.__getattribute__(msg, "__pydantic_extra__")
                except AttributeError:
                    extra = None
            value = extra.get(name) if extra else None
        values.append(value)
    return values


def message_dict(msg: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"role": getattr(msg, "type", "message"), "content": to_jsonable(getattr(msg, "content", None))}
    name, tool_call_id, tool_calls = _message_attrs(msg)
    if name:
        out["name"] = name
    if tool_call_id:
        out["tool_call_id"] = tool_call_id
    if tool_calls:
        out["tool_calls"] = [
            {"name": tc.get("name"), "args": to_jsonable(tc.get("args")), "id": tc.get("id")} for tc in tool_calls
        ]
    return out


def graph_resume(inputs: Any) -> Any:
    """A LangGraph `Command(resume=…)` given as a graph's input: `{"resume": value}`; None for any other input."""
    if type(inputs).__name__ == "Command" and getattr(inputs, "resume", None) is not None:
        return {"resume": to_jsonable(inputs.resume)}
    return None


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


# json.loads' own scanner: json.loads is it plus two regex matches for the whitespace around the
# value (~9,000 instructions of the ~58,000 for a chat reply), which a reply seldom has.
_scan = json.JSONDecoder().scan_once


def parse_json_maybe(text: Any) -> Any:
    """`text` as JSON (json.loads), or `text` itself if it is not JSON."""
    if isinstance(text, str):
        try:
            value, end = _scan(text, 0)
            if end == len(text):
                return value
        except (StopIteration, ValueError):  # not a value at its first character (maybe whitespace)
            pass
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text
