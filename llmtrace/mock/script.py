"""Reply scripts for the scripted OpenAI-compatible server: which answer a request gets, and faults.

A script is JSON or YAML:

    model: gpt-4o-mini-2024-07-18        # the model name responses carry
    latency_ms: 0                        # added to every request
    faults: [429, 503, 200]              # consumed one per request, in order, before normal replies
    fault_rate: 0.0                      # or: fail this share of requests at random …
    fault_statuses: [429, 500, 503]      # … with one of these statuses
    seed: 0
    replies:                             # the first rule whose `when` holds answers
      - when: {tool_results: 0, user_contains: "fifth power"}
        tool_calls: [{name: exponentiate, arguments: {base: 3, exponent: 5}}]
      - content: "The answer is {last_tool_result}."

`when` keys (all must hold): user_contains (last user message, case-insensitive), tool_results
(number of tool messages so far), last_tool_result (exact), has_tools (request offers tools),
model (requested model). Content may use {last_user}, {last_tool_result} and {tool_results}.
A fault is a status code (200 = no fault), or a mapping: {status: 429, retry_after: 0.2,
retry_after_ms: 200, code: insufficient_quota}, {timeout: 5} (answer only after 5 s), {drop: true}
(close the connection without an answer), {cut_after: 3} (a streamed answer breaks off after 3 chunks).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_MODEL = "gpt-4o-mini-2024-07-18"

DEFAULT_REPLIES: list[dict[str, Any]] = [
    {"content": "This is a scripted reply from the llmtrace mock server. You said: {last_user}"}
]


@dataclass
class Fault:
    status: int = 200
    retry_after: float | None = None
    retry_after_ms: int | None = None
    code: str | None = None
    timeout: float | None = None
    drop: bool = False
    cut_after: int | None = None  # a stream that breaks off after this many chunks

    @classmethod
    def parse(cls, spec: Any) -> "Fault":
        if isinstance(spec, int):
            return cls(status=spec)
        if isinstance(spec, str):
            spec = spec.strip().lower()
            if spec in ("timeout", "drop"):
                return cls(timeout=30.0) if spec == "timeout" else cls(drop=True)
            return cls(status=int(spec))
        if isinstance(spec, dict):
            return cls(
                status=int(spec.get("status", 200)),
                retry_after=spec.get("retry_after"),
                retry_after_ms=spec.get("retry_after_ms"),
                code=spec.get("code"),
                timeout=spec.get("timeout"),
                drop=bool(spec.get("drop", False)),
                cut_after=spec.get("cut_after"),
            )
        raise ValueError(f"bad fault {spec!r}")


@dataclass
class Script:
    model: str = DEFAULT_MODEL
    latency_ms: float = 0
    replies: list[dict[str, Any]] = field(default_factory=lambda: list(DEFAULT_REPLIES))
    faults: list[Fault] = field(default_factory=list)
    fault_rate: float = 0.0
    fault_statuses: list[int] = field(default_factory=lambda: [429, 500, 503])
    seed: int = 0
    embedding_dim: int = 64

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Script":
        if not isinstance(data, dict):
            raise ValueError("a mock script must be a mapping")
        s = cls()
        s.model = str(data.get("model", s.model))
        s.latency_ms = float(data.get("latency_ms", 0))
        if "replies" in data:
            if not isinstance(data["replies"], list) or not data["replies"]:
                raise ValueError("replies must be a non-empty list")
            s.replies = list(data["replies"])
        s.faults = [Fault.parse(f) for f in data.get("faults", [])]
        s.fault_rate = float(data.get("fault_rate", 0.0))
        s.fault_statuses = [int(x) for x in data.get("fault_statuses", s.fault_statuses)]
        s.seed = int(data.get("seed", 0))
        s.embedding_dim = int(data.get("embedding_dim", 64))
        return s

    @classmethod
    def load(cls, path: str | Path) -> "Script":
        p = Path(path)
        text = p.read_text(encoding="utf-8")
        if p.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
        return cls.from_dict(data)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


@dataclass
class Conversation:
    """The facts about a chat request that rules can test."""

    last_user: str
    tool_results: int
    last_tool_result: str | None
    has_tools: bool
    model: str

    @classmethod
    def of(cls, body: dict[str, Any]) -> "Conversation":
        messages = body.get("messages") or []
        users = [_text(m.get("content")) for m in messages if m.get("role") == "user"]
        tools = [_text(m.get("content")) for m in messages if m.get("role") == "tool"]
        return cls(
            last_user=users[-1] if users else "",
            tool_results=len(tools),
            last_tool_result=tools[-1] if tools else None,
            has_tools=bool(body.get("tools")),
            model=str(body.get("model", "")),
        )

    def matches(self, when: dict[str, Any] | None) -> bool:
        for key, want in (when or {}).items():
            if key == "user_contains" and str(want).lower() not in self.last_user.lower():
                return False
            if key == "tool_results" and self.tool_results != int(want):
                return False
            if key == "last_tool_result" and self.last_tool_result != str(want):
                return False
            if key == "has_tools" and self.has_tools != bool(want):
                return False
            if key == "model" and self.model != str(want):
                return False
        return True

    def fill(self, template: str) -> str:
        return (
            template.replace("{last_user}", self.last_user)
            .replace("{last_tool_result}", self.last_tool_result or "")
            .replace("{tool_results}", str(self.tool_results))
        )


def choose_reply(script: Script, body: dict[str, Any]) -> tuple[str | None, list[dict[str, Any]], str]:
    """(content, tool_calls as [{name, arguments}], finish_reason) for a chat request."""
    conv = Conversation.of(body)
    for rule in script.replies:
        if conv.matches(rule.get("when")):
            calls = list(rule.get("tool_calls") or [])
            content = rule.get("content")
            content = conv.fill(str(content)) if content is not None else None
            finish = rule.get("finish_reason") or ("tool_calls" if calls else "stop")
            return content, calls, finish
    return "", [], "stop"
