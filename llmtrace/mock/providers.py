"""The scripted server's Ollama and Gemini routes: requests read as a Conversation, replies written in each
API's shape (pure functions, no I/O). The same reply rules answer them as every other route.

- Ollama `POST /api/chat` (what langchain-ollama's ChatOllama posts through the `ollama` client): a JSON
  reply, or with `"stream": true` (Ollama's default) NDJSON lines, one per word, the last with `done`
  and the token counts (`prompt_eval_count`, `eval_count`). Tool calls carry their arguments as objects.
- Gemini `POST /v1beta/models/MODEL:generateContent` and `…:streamGenerateContent?alt=sse` (what
  langchain-google-genai's ChatGoogleGenerativeAI posts through `google-genai`): `candidates` with
  `parts` (text, functionCall), `usageMetadata`; streamed as `data:` events, each with the usage so far.

Models: replies carry the requested model (Gemini: the one in the path) unless the script sets `model`.
"""

from __future__ import annotations

import json
from typing import Any

from llmtrace.mock.payloads import estimate_tokens, words
from llmtrace.mock.script import Conversation, Reply, _text

NDJSON = "application/x-ndjson"
CREATED_AT = "2026-01-01T00:00:00.000000Z"  # a fixed time: identical requests get identical bodies


def _tokens(*values: Any) -> int:
    return 3 + sum(4 + estimate_tokens(json.dumps(v, ensure_ascii=False, sort_keys=True)) for v in values if v)


def _structured(fmt: Any) -> tuple[bool, dict[str, Any] | None]:
    if isinstance(fmt, dict):
        return True, fmt
    return fmt == "json", None


def _arguments(call: dict[str, str]) -> Any:
    try:
        return json.loads(call["arguments"])
    except ValueError:
        return call["arguments"]


# --- Ollama --------------------------------------------------------------------------------------


def ollama_conversation(body: dict[str, Any]) -> Conversation:
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    users = [_text(m.get("content")) for m in messages if m.get("role") == "user"]
    results = [_text(m.get("content")) for m in messages if m.get("role") == "tool"]
    tools = [(str(t["function"].get("name", "")), t["function"].get("parameters") or {})
             for t in body.get("tools") or [] if isinstance(t, dict) and isinstance(t.get("function"), dict)]
    structured, schema = _structured(body.get("format"))
    return Conversation(last_user=users[-1] if users else "", tool_results=len(results),
                        last_tool_result=results[-1] if results else None, has_tools=bool(tools),
                        model=str(body.get("model", "")), api="ollama", tools=tools, structured=structured, schema=schema)


def ollama_input_tokens(body: dict[str, Any]) -> int:
    return _tokens(*[m.get("content") for m in body.get("messages") or [] if isinstance(m, dict)], body.get("tools"))


def _ollama_done(model: str, reason: str, in_tokens: int, out_tokens: int) -> dict[str, Any]:
    return {"model": model, "created_at": CREATED_AT, "done": True, "done_reason": reason, "total_duration": 1000,
            "load_duration": 10, "prompt_eval_count": in_tokens, "prompt_eval_duration": 100, "eval_count": out_tokens,
            "eval_duration": 800}


def ollama_reply(model: str, reply: Reply, in_tokens: int, out_tokens: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content or ""}
    if reply.calls:
        message["tool_calls"] = [{"function": {"name": c["name"], "arguments": _arguments(c)}} for c in reply.calls]
    reason = "length" if reply.finish == "length" else "stop"
    return {**_ollama_done(model, reason, in_tokens, out_tokens), "message": message}


def ollama_lines(model: str, reply: Reply, in_tokens: int, out_tokens: int) -> list[bytes]:
    """A streamed reply: a line per word, the tool calls in one line, then the `done` line with the counts."""
    lines = [{"model": model, "created_at": CREATED_AT, "message": {"role": "assistant", "content": w}, "done": False}
             for w in words(reply.content or "")]
    if reply.calls:
        whole = ollama_reply(model, reply, in_tokens, out_tokens)["message"]
        lines.append({"model": model, "created_at": CREATED_AT, "done": False,
                      "message": {"role": "assistant", "content": "", "tool_calls": whole["tool_calls"]}})
    final = ollama_reply(model, Reply("", [], reply.finish), in_tokens, out_tokens)
    lines.append(final)
    return [json.dumps(line).encode() + b"\n" for line in lines]


# --- Gemini --------------------------------------------------------------------------------------


def gemini_model(path: str) -> str:
    """`…/models/gemini-2.5-flash:generateContent` → gemini-2.5-flash."""
    return path.rsplit("/", 1)[-1].split(":", 1)[0]


def _tool_result(response: Any) -> str:
    if isinstance(response, dict) and len(response) == 1:
        (value,) = response.values()
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return json.dumps(response, ensure_ascii=False)


def gemini_conversation(model: str, body: dict[str, Any]) -> Conversation:
    users: list[str] = []
    results: list[str] = []
    for content in body.get("contents") or []:
        if not isinstance(content, dict) or content.get("role", "user") != "user":
            continue
        parts = [p for p in content.get("parts") or [] if isinstance(p, dict)]
        results += [_tool_result((p["functionResponse"] or {}).get("response")) for p in parts if "functionResponse" in p]
        texts = [str(p["text"]) for p in parts if "text" in p]
        if texts:
            users.append(" ".join(texts))
    tools = [(str(d.get("name", "")), d.get("parameters") or d.get("parametersJsonSchema") or {})
             for t in body.get("tools") or [] if isinstance(t, dict)
             for d in t.get("functionDeclarations") or [] if isinstance(d, dict)]
    calling = ((body.get("toolConfig") or {}).get("functionCallingConfig") or {}) if isinstance(body.get("toolConfig"), dict) else {}
    forced = None
    if str(calling.get("mode", "")).upper() == "ANY" and tools:
        allowed = calling.get("allowedFunctionNames") or []
        forced = allowed[0] if allowed else tools[0][0]
    config = body.get("generationConfig") if isinstance(body.get("generationConfig"), dict) else {}
    schema = config.get("responseJsonSchema") or config.get("responseSchema")
    return Conversation(last_user=users[-1] if users else "", tool_results=len(results),
                        last_tool_result=results[-1] if results else None, has_tools=bool(tools), model=model,
                        api="gemini", tools=tools, forced_tool=forced,
                        structured=config.get("responseMimeType") == "application/json",
                        schema=schema if isinstance(schema, dict) else None)


def gemini_input_tokens(body: dict[str, Any]) -> int:
    return _tokens(body.get("systemInstruction"), *(body.get("contents") or []), body.get("tools"))


def _usage(in_tokens: int, out_tokens: int) -> dict[str, Any]:
    return {"promptTokenCount": in_tokens, "candidatesTokenCount": out_tokens, "totalTokenCount": in_tokens + out_tokens}


def _finish(reply: Reply) -> str:
    return "MAX_TOKENS" if reply.finish == "length" else "STOP"


def gemini_reply(model: str, rid: str, reply: Reply, in_tokens: int, out_tokens: int) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"text": reply.content}] if reply.content else []
    parts += [{"functionCall": {"name": c["name"], "args": _arguments(c)}} for c in reply.calls]
    return {"candidates": [{"content": {"role": "model", "parts": parts or [{"text": ""}]}, "finishReason": _finish(reply),
                            "index": 0}],
            "usageMetadata": _usage(in_tokens, out_tokens), "modelVersion": model, "responseId": f"mock{rid}"}


def gemini_events(model: str, rid: str, reply: Reply, in_tokens: int, out_tokens: int) -> list[bytes]:
    """A streamed reply: an event per word (function calls in the last), each with the usage so far."""
    texts = words(reply.content or "") or [""]
    events = []
    for i, text in enumerate(texts):
        last = i == len(texts) - 1
        parts: list[dict[str, Any]] = [{"text": text}] if text or not (last and reply.calls) else []
        if last:
            parts += [{"functionCall": {"name": c["name"], "args": _arguments(c)}} for c in reply.calls]
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if last:
            candidate["finishReason"] = _finish(reply)
        event = {"candidates": [candidate], "usageMetadata": _usage(in_tokens, out_tokens if last else 0),
                 "modelVersion": model, "responseId": f"mock{rid}"}
        events.append(b"data: " + json.dumps(event).encode() + b"\r\n\r\n")
    return events
