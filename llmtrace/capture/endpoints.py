"""One small adapter per provider endpoint: how to read its request, its response and its stream events.

The call pipeline (`wire.py`, `call.py`) knows nothing of any endpoint; it asks `for_path()` for the adapter
of the request's URL path and hands it JSON. Adapters fill a Span and nothing else: no I/O, no SDK
objects, so the same code reads a live answer, a replayed one and one whose SDK parsing failed.
"""

from __future__ import annotations

import base64
from typing import Any

from llmtrace.capture.serialize import parse_json_maybe
from llmtrace.model import Span, SpanKind


def _tool_calls(raw: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    if not raw:
        return None
    return [
        {"name": (tc.get("function") or {}).get("name"), "args": parse_json_maybe((tc.get("function") or {}).get("arguments")),
         "id": tc.get("id")}
        for tc in raw
    ]


def _text_of(content: Any) -> str | None:
    """Text of a message content that may be a list of typed parts."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p]
        return "".join(texts) if texts else None
    return str(content)


class Endpoint:
    name = "openai"
    kind = SpanKind.LLM.value
    claims_llm_span = True  # a LangChain chat-model run makes this call

    def inputs(self, body: dict[str, Any]) -> Any:
        raise NotImplementedError

    def read(self, span: Span, data: dict[str, Any], own: bool) -> None:
        raise NotImplementedError

    def read_events(self, span: Span, events: list[dict[str, Any]], own: bool) -> None:
        raise NotImplementedError

    def hidden_event(self, event: dict[str, Any]) -> bool:
        """True for the event llmtrace asked for and the caller did not (chat's usage chunk)."""
        return False


class Chat(Endpoint):
    name = "openai.chat.completions"

    def inputs(self, body: dict[str, Any]) -> Any:
        return {"messages": body.get("messages")}

    @staticmethod
    def usage(span: Span, usage: dict[str, Any] | None) -> None:
        if not usage:
            return
        span.input_tokens = usage.get("prompt_tokens")
        span.output_tokens = usage.get("completion_tokens")
        span.cached_tokens = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
        span.reasoning_tokens = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens")

    def read(self, span: Span, data: dict[str, Any], own: bool) -> None:
        span.response = data
        span.model = data.get("model") or span.model
        self.usage(span, data.get("usage"))
        choices = data.get("choices") or []
        if choices:
            choice = choices[0]
            message = choice.get("message") or {}
            span.finish_reason = choice.get("finish_reason")
            span.tool_calls = _tool_calls(message.get("tool_calls"))
            if own:
                span.outputs = {"content": message.get("content"), **({"tool_calls": span.tool_calls} if span.tool_calls else {})}
                if len(choices) > 1:
                    span.outputs["choices"] = [(c.get("message") or {}).get("content") for c in choices]

    def read_events(self, span: Span, events: list[dict[str, Any]], own: bool) -> None:
        content: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        for data in events:
            span.model = data.get("model") or span.model
            if data.get("usage"):
                self.usage(span, data["usage"])
            for choice in data.get("choices") or []:
                if choice.get("index", 0) != 0:
                    continue
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    content.append(delta["content"])
                for tc in delta.get("tool_calls") or []:
                    slot = calls.setdefault(tc.get("index", 0), {"id": None, "function": {"name": "", "arguments": ""}})
                    slot["id"] = tc.get("id") or slot["id"]
                    fn = tc.get("function") or {}
                    slot["function"]["name"] += fn.get("name") or ""
                    slot["function"]["arguments"] += fn.get("arguments") or ""
                if choice.get("finish_reason"):
                    span.finish_reason = choice["finish_reason"]
        span.response = {"stream": True, "chunks": events}
        span.tool_calls = _tool_calls([calls[i] for i in sorted(calls)]) or span.tool_calls
        if own:
            span.outputs = {"content": "".join(content) or None, **({"tool_calls": span.tool_calls} if span.tool_calls else {})}

    def hidden_event(self, event: dict[str, Any]) -> bool:
        return not event.get("choices") and bool(event.get("usage"))


class Responses(Endpoint):
    name = "openai.responses"

    def inputs(self, body: dict[str, Any]) -> Any:
        messages: list[dict[str, Any]] = []
        if body.get("instructions"):
            messages.append({"role": "system", "content": body["instructions"]})
        items = body.get("input")
        if isinstance(items, str):
            items = [{"role": "user", "content": items}]
        for item in items or []:
            if not isinstance(item, dict):
                continue
            kind = item.get("type")
            if kind == "function_call":
                messages.append({"role": "assistant", "content": None, "tool_calls": [
                    {"name": item.get("name"), "args": parse_json_maybe(item.get("arguments")), "id": item.get("call_id")}]})
            elif kind == "function_call_output":
                messages.append({"role": "tool", "content": item.get("output"), "tool_call_id": item.get("call_id")})
            elif "role" in item:
                messages.append({"role": item["role"], "content": _text_of(item.get("content"))})
        return {"messages": messages}

    def read(self, span: Span, data: dict[str, Any], own: bool) -> None:
        span.response = data
        span.model = data.get("model") or span.model
        usage = data.get("usage") or {}
        if usage:
            span.input_tokens = usage.get("input_tokens")
            span.output_tokens = usage.get("output_tokens")
            span.cached_tokens = (usage.get("input_tokens_details") or {}).get("cached_tokens")
            span.reasoning_tokens = (usage.get("output_tokens_details") or {}).get("reasoning_tokens")
        texts: list[str] = []
        calls: list[dict[str, Any]] = []
        for item in data.get("output") or []:
            if item.get("type") == "message":
                texts.append(_text_of(item.get("content")) or "")
            elif item.get("type") == "function_call":
                calls.append({"name": item.get("name"), "args": parse_json_maybe(item.get("arguments")), "id": item.get("call_id")})
        span.tool_calls = calls or None
        incomplete = (data.get("incomplete_details") or {}).get("reason")
        span.finish_reason = incomplete or ("tool_calls" if calls else data.get("status"))
        if own:
            span.outputs = {"content": "".join(texts) or None, **({"tool_calls": calls} if calls else {})}

    def read_events(self, span: Span, events: list[dict[str, Any]], own: bool) -> None:
        final = None
        deltas: list[str] = []
        for event in events:
            kind = event.get("type") or ""
            if kind in ("response.completed", "response.incomplete", "response.failed") and isinstance(event.get("response"), dict):
                final = event["response"]
            elif kind == "response.output_text.delta":
                deltas.append(str(event.get("delta") or ""))
            elif kind == "response.created" and isinstance(event.get("response"), dict):
                span.model = event["response"].get("model") or span.model
        if final is not None:
            self.read(span, final, own)
        elif own:
            span.outputs = {"content": "".join(deltas) or None}
        span.response = {"stream": True, "events": events}


class Embeddings(Endpoint):
    name = "openai.embeddings"
    kind = SpanKind.EMBEDDING.value
    claims_llm_span = False

    def inputs(self, body: dict[str, Any]) -> Any:
        value = body.get("input")
        return {"input": [value] if isinstance(value, str) else value}

    def read(self, span: Span, data: dict[str, Any], own: bool) -> None:
        span.model = data.get("model") or span.model
        usage = data.get("usage") or {}
        span.input_tokens = usage.get("prompt_tokens")
        span.output_tokens = 0 if span.input_tokens is not None else None
        vectors = data.get("data") or []
        dims = None
        if vectors:
            first = vectors[0].get("embedding")
            if isinstance(first, list):
                dims = len(first)
            elif isinstance(first, str):
                try:
                    dims = len(base64.b64decode(first)) // 4
                except ValueError:
                    dims = None
        span.outputs = {"vectors": len(vectors), "dimensions": dims}
        # The answer as received (the SDK asks for base64 vectors: ~8 kB for 1,536 dimensions), so that
        # `llmtrace replay` can give it back; the tree shows only the shape (outputs).
        span.response = data

    def read_events(self, span: Span, events: list[dict[str, Any]], own: bool) -> None:
        if events:
            self.read(span, events[-1], own)


class Messages(Endpoint):
    """Anthropic's Messages API (what LangChain's ChatAnthropic calls)."""

    name = "anthropic.messages"

    def inputs(self, body: dict[str, Any]) -> Any:
        messages: list[dict[str, Any]] = []
        if body.get("system"):
            messages.append({"role": "system", "content": _text_of(body["system"])})
        for m in body.get("messages") or []:
            content = m.get("content")
            if isinstance(content, list):
                for block in content:
                    if isinstance(block, dict) and block.get("type") == "tool_result":
                        messages.append({"role": "tool", "content": _text_of(block.get("content")),
                                         "tool_call_id": block.get("tool_use_id")})
                calls = [{"name": b.get("name"), "args": b.get("input"), "id": b.get("id")}
                         for b in content if isinstance(b, dict) and b.get("type") == "tool_use"]
                text = _text_of([b for b in content if isinstance(b, dict) and b.get("type") == "text"])
                if text or calls:
                    messages.append({"role": m.get("role"), "content": text, **({"tool_calls": calls} if calls else {})})
            else:
                messages.append({"role": m.get("role"), "content": content})
        return {"messages": messages}

    @staticmethod
    def usage(span: Span, usage: dict[str, Any]) -> None:
        if usage.get("input_tokens") is not None:
            cached = usage.get("cache_read_input_tokens") or 0
            # Anthropic counts cache reads and writes apart from input_tokens; the span's input is all of them.
            span.input_tokens = usage["input_tokens"] + cached + (usage.get("cache_creation_input_tokens") or 0)
            span.cached_tokens = cached or None
        if usage.get("output_tokens") is not None:
            span.output_tokens = usage["output_tokens"]

    def read(self, span: Span, data: dict[str, Any], own: bool) -> None:
        span.response = data
        span.model = data.get("model") or span.model
        self.usage(span, data.get("usage") or {})
        blocks = data.get("content") or []
        calls = [{"name": b.get("name"), "args": b.get("input"), "id": b.get("id")} for b in blocks if b.get("type") == "tool_use"]
        span.tool_calls = calls or None
        span.finish_reason = data.get("stop_reason")
        if own:
            span.outputs = {"content": _text_of([b for b in blocks if b.get("type") == "text"]),
                            **({"tool_calls": calls} if calls else {})}

    def read_events(self, span: Span, events: list[dict[str, Any]], own: bool) -> None:
        blocks: dict[int, dict[str, Any]] = {}
        for event in events:
            kind = event.get("type")
            if kind == "message_start":
                message = event.get("message") or {}
                span.model = message.get("model") or span.model
                self.usage(span, message.get("usage") or {})
            elif kind == "content_block_start":
                blocks[event.get("index", 0)] = dict(event.get("content_block") or {}, partial="")
            elif kind == "content_block_delta":
                block = blocks.setdefault(event.get("index", 0), {"type": "text", "text": "", "partial": ""})
                delta = event.get("delta") or {}
                if delta.get("type") == "text_delta":
                    block["text"] = block.get("text", "") + str(delta.get("text") or "")
                elif delta.get("type") == "input_json_delta":
                    block["partial"] += str(delta.get("partial_json") or "")
            elif kind == "message_delta":
                self.usage(span, {"output_tokens": (event.get("usage") or {}).get("output_tokens")})
                span.finish_reason = (event.get("delta") or {}).get("stop_reason") or span.finish_reason
        ordered = [blocks[i] for i in sorted(blocks)]
        calls = [{"name": b.get("name"), "args": parse_json_maybe(b["partial"]) if b["partial"] else b.get("input"), "id": b.get("id")}
                 for b in ordered if b.get("type") == "tool_use"]
        span.tool_calls = calls or None
        span.response = {"stream": True, "events": events}
        if own:
            span.outputs = {"content": "".join(b.get("text", "") for b in ordered if b.get("type") == "text") or None,
                            **({"tool_calls": calls} if calls else {})}


CHAT, RESPONSES, EMBEDDINGS, MESSAGES = Chat(), Responses(), Embeddings(), Messages()


def for_path(sdk: str, method: str, url: str) -> Endpoint | None:
    """The adapter for an SDK request, or None for calls llmtrace leaves alone (files, models, batches …)."""
    if method.lower() != "post":
        return None
    path = url.split("?", 1)[0].rstrip("/")
    if sdk == "openai":
        if path.endswith("/chat/completions"):
            return CHAT
        if path.endswith("/responses"):
            return RESPONSES
        if path.endswith("/embeddings"):
            return EMBEDDINGS
    elif sdk == "anthropic" and path.endswith("/messages"):
        return MESSAGES
    return None
