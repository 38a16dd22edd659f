"""Reply bodies and SSE events of the three APIs the scripted server speaks (pure functions, no I/O).

Chat Completions (`chat.completion` / `chat.completion.chunk`), Responses (`response` objects and the
`response.*` stream events) and Anthropic Messages (`message` objects and the `message_start` …
`message_stop` stream events), shaped as the official openai / anthropic SDK models validate them.
Token counts are estimates (a token per ~4 characters), the same for a streamed and a whole reply.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from llmtrace.mock.script import Reply

Frame = bytes  # one SSE event, ready to write


def estimate_tokens(text: str) -> int:
    """Roughly what a BPE tokenizer gives for English: a token per ~4 characters."""
    return max(1, math.ceil(len(text) / 4)) if text else 0


def prompt_tokens(body: dict[str, Any]) -> int:
    """Input tokens of a Chat Completions request."""
    total = 3
    for m in body.get("messages") or []:
        total += 4 + estimate_tokens(json.dumps(m.get("content"), ensure_ascii=False))
        if m.get("tool_calls"):
            total += estimate_tokens(json.dumps(m["tool_calls"]))
    if body.get("tools"):
        total += estimate_tokens(json.dumps(body["tools"]))
    return total


def responses_input_tokens(body: dict[str, Any]) -> int:
    """Input tokens of a Responses request (input items, instructions, tools)."""
    items = body.get("input")
    total = 3
    if isinstance(items, str):
        total += 4 + estimate_tokens(items)
    for item in items if isinstance(items, list) else []:
        total += 4 + estimate_tokens(json.dumps(item, ensure_ascii=False))
    if body.get("instructions"):
        total += 4 + estimate_tokens(json.dumps(body["instructions"], ensure_ascii=False))
    if body.get("tools"):
        total += estimate_tokens(json.dumps(body["tools"]))
    return total


def messages_input_tokens(body: dict[str, Any]) -> int:
    """Input tokens of an Anthropic Messages request (system, messages, tools)."""
    total = 3
    if body.get("system"):
        total += 4 + estimate_tokens(json.dumps(body["system"], ensure_ascii=False))
    for m in body.get("messages") or []:
        total += 4 + estimate_tokens(json.dumps(m.get("content") if isinstance(m, dict) else m, ensure_ascii=False))
    if body.get("tools"):
        total += estimate_tokens(json.dumps(body["tools"]))
    return total


def output_tokens(reply: Reply) -> int:
    return estimate_tokens(reply.content or "") + sum(
        estimate_tokens(json.dumps({"name": c["name"], "arguments": c["arguments"]})) for c in reply.calls
    )


def words(text: str) -> list[str]:
    """Stream pieces: one per word, each with the whitespace after it."""
    return re.findall(r"\S+\s*|\s+", text)


def pieces(text: str, size: int = 8) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def sse(data: Any, event: str | None = None) -> Frame:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + json.dumps(data).encode() + b"\n\n"


# --- Chat Completions ---------------------------------------------------------------------------


def chat_tool_calls(rid: str, reply: Reply) -> list[dict[str, Any]]:
    return [
        {"id": f"call_{rid}_{i}", "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
        for i, c in enumerate(reply.calls)
    ]


def chat_usage(p_tokens: int, c_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": p_tokens,
        "completion_tokens": c_tokens,
        "total_tokens": p_tokens + c_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
    }


def chat_completion(common: dict[str, Any], reply: Reply, tool_calls: list[dict[str, Any]], usage: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {**common, "object": "chat.completion", "service_tier": "default",
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": reply.finish}], "usage": usage}


def chat_chunks(common: dict[str, Any], reply: Reply, tool_calls: list[dict[str, Any]], usage: dict[str, Any] | None) -> list[Frame]:
    """The chunks of a streamed reply; with `usage` (include_usage asked for) every chunk carries
    "usage": null and a last chunk with no choices carries the usage."""
    frames: list[Frame] = []

    def chunk(delta: dict[str, Any] | None, finish_reason: str | None = None, with_usage: Any = None) -> None:
        payload: dict[str, Any] = {**common, "object": "chat.completion.chunk"}
        payload["choices"] = [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
        if usage is not None:
            payload["usage"] = with_usage
        frames.append(sse(payload))

    chunk({"role": "assistant", "content": "" if not tool_calls else None, "refusal": None})
    for piece in words(reply.content or ""):
        chunk({"content": piece})
    for i, tc in enumerate(tool_calls):
        chunk({"tool_calls": [{"index": i, "id": tc["id"], "type": "function", "function": {"name": tc["function"]["name"], "arguments": ""}}]})
        for part in pieces(tc["function"]["arguments"]):
            chunk({"tool_calls": [{"index": i, "function": {"arguments": part}}]})
    chunk({}, reply.finish)
    if usage is not None:
        chunk(None, with_usage=usage)
    return frames


# --- Responses API ------------------------------------------------------------------------------


def responses_output(rid: str, reply: Reply) -> list[dict[str, Any]]:
    """Output items: a message (when there is text, or nothing else) then one function_call per call."""
    out: list[dict[str, Any]] = []
    if reply.content or not reply.calls:
        out.append({"type": "message", "id": f"msg_mock{rid}", "status": "completed", "role": "assistant",
                    "content": [{"type": "output_text", "text": reply.content or "", "annotations": [], "logprobs": []}]})
    for i, c in enumerate(reply.calls):
        out.append({"type": "function_call", "id": f"fc_mock{rid}_{i}", "call_id": f"call_mock{rid}_{i}",
                    "name": c["name"], "arguments": c["arguments"], "status": "completed"})
    return out


def responses_usage(in_tokens: int, out_tokens: int) -> dict[str, Any]:
    return {"input_tokens": in_tokens, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": out_tokens, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": in_tokens + out_tokens}


def response_object(rid: str, created: int, model: str, body: dict[str, Any], *, status: str,
                    output: list[dict[str, Any]], usage: dict[str, Any] | None, incomplete: bool = False) -> dict[str, Any]:
    text = body.get("text") if isinstance(body.get("text"), dict) else {}
    return {
        "id": f"resp_mock{rid}",
        "object": "response",
        "created_at": created,
        "status": status,
        "completed_at": created if status in ("completed", "incomplete") else None,
        "background": False,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "model": model,
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": {"effort": None, "summary": None},
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": {"format": text.get("format") or {"type": "text"}, "verbosity": text.get("verbosity", "medium")},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_logprobs": body.get("top_logprobs", 0),
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": usage,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def response_events(final: dict[str, Any]) -> list[Frame]:
    """The SSE events of a streamed Responses reply whose finished form is `final`; the last one,
    response.completed (or response.incomplete), carries `final` whole, usage included."""
    frames: list[Frame] = []

    def event(kind: str, **fields: Any) -> None:
        frames.append(sse({"type": kind, "sequence_number": len(frames), **fields}, event=kind))

    start = {**final, "status": "in_progress", "completed_at": None, "output": [], "usage": None, "incomplete_details": None}
    event("response.created", response=start)
    event("response.in_progress", response=start)
    for index, item in enumerate(final["output"]):
        if item["type"] == "message":
            text = item["content"][0]["text"]
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            event("response.output_item.added", output_index=index, item={**item, "status": "in_progress", "content": []})
            event("response.content_part.added", output_index=index, item_id=item["id"], content_index=0, part=part)
            for piece in words(text):
                event("response.output_text.delta", output_index=index, item_id=item["id"], content_index=0, delta=piece, logprobs=[])
            event("response.output_text.done", output_index=index, item_id=item["id"], content_index=0, text=text, logprobs=[])
            event("response.content_part.done", output_index=index, item_id=item["id"], content_index=0, part={**part, "text": text})
            event("response.output_item.done", output_index=index, item=item)
        else:
            event("response.output_item.added", output_index=index, item={**item, "status": "in_progress", "arguments": ""})
            for piece in pieces(item["arguments"]):
                event("response.function_call_arguments.delta", output_index=index, item_id=item["id"], delta=piece)
            event("response.function_call_arguments.done", output_index=index, item_id=item["id"], name=item["name"], arguments=item["arguments"])
            event("response.output_item.done", output_index=index, item=item)
    event("response.incomplete" if final["status"] == "incomplete" else "response.completed", response=final)
    return frames


# --- Anthropic Messages -------------------------------------------------------------------------


def anthropic_stop_reason(reply: Reply) -> str:
    if reply.calls:
        return "tool_use"
    return {"length": "max_tokens", "max_tokens": "max_tokens", "stop_sequence": "stop_sequence"}.get(reply.finish, "end_turn")


def anthropic_content(rid: str, reply: Reply) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if reply.content or not reply.calls:
        blocks.append({"type": "text", "text": reply.content or ""})
    for i, c in enumerate(reply.calls):
        try:
            args = json.loads(c["arguments"])
        except ValueError:
            args = {}
        blocks.append({"type": "tool_use", "id": f"toolu_mock{rid}_{i}", "name": c["name"], "input": args if isinstance(args, dict) else {}})
    return blocks


def anthropic_usage(in_tokens: int, out_tokens: int) -> dict[str, Any]:
    return {"input_tokens": in_tokens, "output_tokens": out_tokens, "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0, "service_tier": "standard"}


def anthropic_message(rid: str, model: str, reply: Reply, usage: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"msg_mock{rid}", "type": "message", "role": "assistant", "model": model,
            "content": anthropic_content(rid, reply), "stop_reason": anthropic_stop_reason(reply),
            "stop_sequence": None, "usage": usage}


def anthropic_events(message: dict[str, Any]) -> list[Frame]:
    """The SSE events of a streamed Messages reply whose finished form is `message`. message_start
    carries the input tokens; message_delta carries the final usage (input and output tokens)."""
    frames: list[Frame] = []

    def event(kind: str, **fields: Any) -> None:
        frames.append(sse({"type": kind, **fields}, event=kind))

    usage = message["usage"]
    event("message_start", message={**message, "content": [], "stop_reason": None, "stop_sequence": None,
                                    "usage": {**usage, "output_tokens": 0}})
    event("ping")
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            event("content_block_start", index=index, content_block={"type": "text", "text": ""})
            for piece in words(block["text"]):
                event("content_block_delta", index=index, delta={"type": "text_delta", "text": piece})
        else:
            event("content_block_start", index=index, content_block={**block, "input": {}})
            for piece in pieces(json.dumps(block["input"])):
                event("content_block_delta", index=index, delta={"type": "input_json_delta", "partial_json": piece})
        event("content_block_stop", index=index)
    event("message_delta", delta={"stop_reason": message["stop_reason"], "stop_sequence": None},
          usage={"input_tokens": usage["input_tokens"], "output_tokens": usage["output_tokens"],
                 "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0})
    event("message_stop")
    return frames


def anthropic_error_type(status: int) -> str:
    return {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error",
            413: "request_too_large", 429: "rate_limit_error", 529: "overloaded_error"}.get(status, "api_error")
