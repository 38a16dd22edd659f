"""Adapters for provider APIs captured at the httpx level (httpwire.py): Ollama's /api/chat, Gemini's
generateContent / streamGenerateContent, and Chat Completions sent by clients other than the openai SDK
(Mistral, Groq). Like endpoints.py's, they read JSON into a Span and nothing else.

A provider joins by an adapter here and a line in `for_request`: the path it posts to, how its usage,
model, tool calls and stream pieces read. Paths nothing here knows are left alone.
"""

from __future__ import annotations

from typing import Any

from llmtrace.capture.endpoints import Chat, Endpoint
from llmtrace.model import Span


def _calls(raw: Any) -> list[dict[str, Any]] | None:
    out = [{"name": (c.get("function") or {}).get("name"), "args": (c.get("function") or {}).get("arguments"),
            "id": c.get("id")} for c in raw or [] if isinstance(c, dict)]
    return out or None


class OllamaChat(Endpoint):
    """Ollama's chat API (langchain-ollama → the `ollama` client): JSON, or NDJSON lines when streamed."""

    name = "ollama.chat"
    provider = "ollama"
    lines = True  # a streamed answer is newline-delimited JSON, not server-sent events

    def inputs(self, body: dict[str, Any]) -> Any:
        messages = []
        for m in body.get("messages") or []:
            if isinstance(m, dict):
                calls = _calls(m.get("tool_calls"))
                messages.append({"role": m.get("role"), "content": m.get("content"), **({"tool_calls": calls} if calls else {})})
        return {"messages": messages}

    @staticmethod
    def _usage(span: Span, data: dict[str, Any]) -> None:
        if data.get("prompt_eval_count") is not None:
            span.input_tokens = data["prompt_eval_count"]
        if data.get("eval_count") is not None:
            span.output_tokens = data["eval_count"]
        span.finish_reason = data.get("done_reason") or span.finish_reason
        span.model = data.get("model") or span.model

    def read(self, span: Span, data: dict[str, Any], own: bool) -> None:
        span.response = data
        self._usage(span, data)
        message = data.get("message") or {}
        span.tool_calls = _calls(message.get("tool_calls"))
        if own:
            span.outputs = {"content": message.get("content"), **({"tool_calls": span.tool_calls} if span.tool_calls else {})}

    def read_events(self, span: Span, events: list[dict[str, Any]], own: bool) -> None:
        text: list[str] = []
        calls: list[Any] = []
        for data in events:
            message = data.get("message") or {}
            text.append(str(message.get("content") or ""))
            calls += message.get("tool_calls") or []
            if data.get("done"):
                self._usage(span, data)
            span.model = data.get("model") or span.model
        span.tool_calls = _calls(calls)
        span.response = {"stream": True, "lines": events}
        if own:
            span.outputs = {"content": "".join(text) or None, **({"tool_calls": span.tool_calls} if span.tool_calls else {})}


def _parts(content: Any) -> tuple[str | None, list[dict[str, Any]], list[Any]]:
    """(text, function calls, function responses) of a Gemini content."""
    parts = [p for p in (content or {}).get("parts") or [] if isinstance(p, dict)]
    texts = [str(p["text"]) for p in parts if isinstance(p.get("text"), str) and not p.get("thought")]
    calls = [{"name": (p["functionCall"] or {}).get("name"), "args": (p["functionCall"] or {}).get("args"),
              "id": (p["functionCall"] or {}).get("id")} for p in parts if "functionCall" in p]
    results = [p["functionResponse"] for p in parts if "functionResponse" in p]
    return ("".join(texts) if texts else None), calls, results


class GeminiGenerate(Endpoint):
    """Gemini's generateContent (langchain-google-genai → google-genai); streamed as `data:` events."""

    name = "google.generate_content"
    provider = "google"
    lines = False

    def inputs(self, body: dict[str, Any]) -> Any:
        messages: list[dict[str, Any]] = []
        system = body.get("systemInstruction")
        if isinstance(system, dict):
            messages.append({"role": "system", "content": _parts(system)[0]})
        for content in body.get("contents") or []:
            if not isinstance(content, dict):
                continue
            text, calls, results = _parts(content)
            for result in results:
                messages.append({"role": "tool", "content": (result or {}).get("response"), "name": (result or {}).get("name")})
            if text is not None or calls:
                role = "assistant" if content.get("role") == "model" else content.get("role", "user")
                messages.append({"role": role, "content": text, **({"tool_calls": calls} if calls else {})})
        return {"messages": messages}

    @staticmethod
    def _usage(span: Span, usage: dict[str, Any]) -> None:
        if not usage:
            return
        span.input_tokens = usage.get("promptTokenCount", span.input_tokens)
        out, thoughts = usage.get("candidatesTokenCount"), usage.get("thoughtsTokenCount")
        if out is not None or thoughts is not None:
            span.output_tokens = (out or 0) + (thoughts or 0)  # thinking is billed as output
        span.reasoning_tokens = thoughts if thoughts is not None else span.reasoning_tokens
        span.cached_tokens = usage.get("cachedContentTokenCount", span.cached_tokens)

    def read(self, span: Span, data: dict[str, Any], own: bool) -> None:
        span.response = data
        self.read_piece(span, data)
        candidate = (data.get("candidates") or [{}])[0] or {}
        text, calls, _ = _parts(candidate.get("content"))
        span.tool_calls = calls or None
        if own:
            span.outputs = {"content": text, **({"tool_calls": calls} if calls else {})}

    def read_piece(self, span: Span, data: dict[str, Any]) -> None:
        self._usage(span, data.get("usageMetadata") or {})
        span.model = data.get("modelVersion") or span.model
        candidate = (data.get("candidates") or [{}])[0] or {}
        if candidate.get("finishReason"):
            span.finish_reason = str(candidate["finishReason"]).lower()

    def read_events(self, span: Span, events: list[dict[str, Any]], own: bool) -> None:
        text: list[str] = []
        calls: list[dict[str, Any]] = []
        for data in events:
            self.read_piece(span, data)
            piece, more, _ = _parts(((data.get("candidates") or [{}])[0] or {}).get("content"))
            text.append(piece or "")
            calls += more
        span.tool_calls = calls or None
        span.response = {"stream": True, "chunks": events}
        if own:
            span.outputs = {"content": "".join(text) or None, **({"tool_calls": calls} if calls else {})}


class CompatibleChat(Chat):
    """Chat Completions posted by a client other than the openai SDK (langchain-mistralai over plain httpx, the
    groq SDK): the same shapes; Groq's streams carry their usage under `x_groq`."""

    name = "chat.completions"
    provider = "openai-compatible"
    lines = False

    def read_events(self, span: Span, events: list[dict[str, Any]], own: bool) -> None:
        super().read_events(span, events, own)
        for data in events:
            usage = (data.get("x_groq") or {}).get("usage") if isinstance(data.get("x_groq"), dict) else None
            if usage and not data.get("usage"):
                self.usage(span, usage)


OLLAMA_CHAT, GEMINI, COMPATIBLE_CHAT = OllamaChat(), GeminiGenerate(), CompatibleChat()


def for_request(method: str, path: str) -> Endpoint | None:
    """The adapter for an httpx request, or None for every request llmtrace leaves alone."""
    if method != "POST":
        return None
    if path.endswith("/api/chat"):
        return OLLAMA_CHAT
    if path.endswith(":generateContent") or path.endswith(":streamGenerateContent"):
        return GEMINI
    if path.endswith("/chat/completions"):  # never an openai SDK call: those are captured at its request()
        return COMPATIBLE_CHAT
    return None
