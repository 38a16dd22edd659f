"""Reply scripts for the scripted OpenAI-compatible server: which answer a request gets, and faults.

A script is JSON or YAML:

    model: gpt-4o-mini-2024-07-18        # the model name replies carry (see "Models" below)
    latency_ms: 0                        # added to every request
    faults: [429, 503, 200]              # consumed one per request, in order, before normal replies
    fault_rate: 0.0                      # or: fail this share of requests at random …
    fault_statuses: [429, 500, 503]      # … with one of these statuses
    seed: 0                              # seeds fault_rate's random choices
    embedding_dim: 64                    # length of /v1/embeddings vectors (a request's `dimensions` wins)
    replies:                             # the first rule whose `when` holds answers
      - when: {tool_results: 0, user_contains: "fifth power"}
        tool_calls: [{name: exponentiate, arguments: {base: 3, exponent: 5}}]
      - content: "The answer is {last_tool_result}."

The same rules answer every API the server speaks: Chat Completions (/v1/chat/completions),
Responses (/v1/responses) and Anthropic Messages (/v1/messages). Faults apply to all of them.

Rule keys (a rule with none of content/samples/json/tool_calls answers with empty text):

    when: {...}            conditions, all must hold (see below); no `when` = always
    content: "text"        the reply text; may use {last_user}, {last_tool_result}, {tool_results}
                             e.g.  - content: "You said {last_user}"
    tool_calls: [...]      tool calls to make, each {name, arguments}; arguments a mapping or a JSON
                           string (sent verbatim, so it can be malformed on purpose)
                             e.g.  - tool_calls: [{name: multiply, arguments: {a: 2, b: 3}}]
    json: {...}            a JSON value: the reply text is json.dumps of it when the request asks for
                           structured output (response_format / text.format / output_config.format),
                           or when the rule has no `content`; the arguments of a forced tool call
                           when the rule has no `arguments`
                             e.g.  - {when: {structured: true}, json: {title: Inception, year: 2010}}
    arguments: {...}       arguments of the tool call a request forces with tool_choice (a function
                           by name, or "required"/"any" = the first tool) when the rule has no tool_calls
                             e.g.  - {when: {forced_tool: Person}, arguments: {name: Ada, age: 36}}
    samples: [...]         instead of content/json/tool_calls/arguments: the n-th identical request
                           (same route and same JSON body, `stream`/`stream_options` left out; n counts
                           from 0 on a fresh server or after /_mock/reset, in arrival order) gets
                           samples[n % len], so the same request sequence gets the same answers from
                           any fresh server. A
                           sample is a string (the content) or a mapping with the keys content, json,
                           tool_calls, arguments, finish_reason, as in a rule; requests answered by a
                           fault do not count
                             e.g.  - samples: ["not json {", {json: {ok: true}}]
    finish_reason: stop    the chat finish_reason (default "tool_calls" with tool calls, else "stop");
                           "length" is also a Responses status "incomplete" and an Anthropic
                           stop_reason "max_tokens"
                             e.g.  - {content: "cut sho", finish_reason: length}

`when` keys (all must hold):

    user_contains: "word"      the last user message's text contains this (case-insensitive); an
                               Anthropic user message holding only tool_result blocks is not one
    tool_results: 2            number of tool results so far (chat "tool" messages, Responses
                               function_call_output items, Anthropic tool_result blocks)
    last_tool_result: "42"     the last tool result's text, exactly
    has_tools: true            the request offers tools
    model: gpt-4o              the requested model, exactly
    api: responses             which API was called: chat, responses or messages
    structured: true           the request asks for JSON output (json_schema or json_object)
    forced_tool: Person        the tool the request forces with tool_choice (true = any forced tool,
                               false = none forced)

When the request asks for structured output and the matched rule has neither `json` nor content
(or no rule matches, or the script has no `replies` at all), the reply is a minimal instance
generated from the request's JSON schema (see llmtrace.mock.schema; `{}` for json_object without a
schema). A forced tool call without `arguments`/`json` gets arguments generated from that tool's
parameter schema the same way. Note that a catch-all `content` rule answers structured requests
with its text verbatim: put `- when: {structured: true}` (nothing else) before it to get generated
instances instead.

Models: Chat Completions and Responses replies carry the script's `model`; Anthropic replies carry
the requested model unless the script sets `model`.

A fault is a status code (200 = no fault), or a mapping: {status: 429, retry_after: 0.2,
retry_after_ms: 200, code: insufficient_quota}, {timeout: 5} (answer only after 5 s), {drop: true}
(close the connection without an answer), {cut_after: 3} (a streamed answer breaks off after 3
chunks / SSE events). The strings "timeout" (30 s) and "drop" work too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmtrace.mock.schema import instance_of

DEFAULT_MODEL = "gpt-4o-mini-2024-07-18"

DEFAULT_REPLIES: list[dict[str, Any]] = [
    {"content": "This is a scripted reply from the llmtrace mock server. You said: {last_user}"}
]

RULE_KEYS = ("when", "content", "samples", "json", "tool_calls", "arguments", "finish_reason")
SAMPLE_KEYS = ("content", "json", "tool_calls", "arguments", "finish_reason")
WHEN_KEYS = ("user_contains", "tool_results", "last_tool_result", "has_tools", "model", "api", "structured", "forced_tool")
APIS = ("chat", "responses", "messages")


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


def _check_rule(i: int, rule: Any) -> None:
    if not isinstance(rule, dict):
        raise ValueError(f"reply rule {i} must be a mapping")
    unknown = sorted(set(rule) - set(RULE_KEYS))
    if unknown:
        raise ValueError(f"reply rule {i}: unknown key(s) {', '.join(unknown)} (known: {', '.join(RULE_KEYS)})")
    when = rule.get("when")
    if when is not None:
        if not isinstance(when, dict):
            raise ValueError(f"reply rule {i}: `when` must be a mapping")
        unknown = sorted(set(when) - set(WHEN_KEYS))
        if unknown:
            raise ValueError(f"reply rule {i}: unknown `when` key(s) {', '.join(unknown)} (known: {', '.join(WHEN_KEYS)})")
        if "api" in when and when["api"] not in APIS:
            raise ValueError(f"reply rule {i}: `when.api` must be one of {', '.join(APIS)}")
    if "samples" in rule:
        samples = rule["samples"]
        if not isinstance(samples, list) or not samples:
            raise ValueError(f"reply rule {i}: samples must be a non-empty list")
        for j, s in enumerate(samples):
            if isinstance(s, dict):
                unknown = sorted(set(s) - set(SAMPLE_KEYS))
                if unknown:
                    raise ValueError(f"reply rule {i}, sample {j}: unknown key(s) {', '.join(unknown)} (known: {', '.join(SAMPLE_KEYS)})")
            elif not isinstance(s, str):
                raise ValueError(f"reply rule {i}, sample {j}: a sample is a string or a mapping")
    if "tool_calls" in rule and rule["tool_calls"] is not None:
        if not isinstance(rule["tool_calls"], list) or any(not isinstance(c, dict) or "name" not in c for c in rule["tool_calls"]):
            raise ValueError(f"reply rule {i}: tool_calls must be a list of {{name, arguments}}")


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
    model_set: bool = False  # the script named its model (Anthropic replies then carry it too)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Script":
        if not isinstance(data, dict):
            raise ValueError("a mock script must be a mapping")
        s = cls()
        s.model = str(data.get("model", s.model))
        s.model_set = "model" in data
        s.latency_ms = float(data.get("latency_ms", 0))
        if "replies" in data:
            if not isinstance(data["replies"], list) or not data["replies"]:
                raise ValueError("replies must be a non-empty list")
            for i, rule in enumerate(data["replies"]):
                _check_rule(i, rule)
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


def _first_tool(tools: list[tuple[str, dict[str, Any]]]) -> str | None:
    return tools[0][0] if tools else None


@dataclass
class Conversation:
    """The facts about a request that rules can test, whichever API it came through."""

    last_user: str
    tool_results: int
    last_tool_result: str | None
    has_tools: bool
    model: str
    api: str = "chat"
    tools: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (name, parameters schema)
    forced_tool: str | None = None  # the function tool_choice forces
    structured: bool = False  # JSON output asked for (json_schema or json_object)
    schema: dict[str, Any] | None = None  # the JSON schema asked for, if any

    @classmethod
    def for_api(cls, api: str, body: dict[str, Any]) -> "Conversation":
        return {"chat": cls.of, "responses": cls.of_responses, "messages": cls.of_messages}[api](body)

    @classmethod
    def of(cls, body: dict[str, Any]) -> "Conversation":
        """A Chat Completions request."""
        messages = body.get("messages") or []
        users = [_text(m.get("content")) for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        results = [_text(m.get("content")) for m in messages if isinstance(m, dict) and m.get("role") == "tool"]
        tools = [
            (str(t["function"].get("name", "")), t["function"].get("parameters") or {})
            for t in body.get("tools") or []
            if isinstance(t, dict) and isinstance(t.get("function"), dict)
        ]
        choice = body.get("tool_choice")
        forced = None
        if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
            forced = choice["function"].get("name")
        elif choice == "required":
            forced = _first_tool(tools)
        fmt = body.get("response_format") if isinstance(body.get("response_format"), dict) else {}
        schema = (fmt.get("json_schema") or {}).get("schema") if fmt.get("type") == "json_schema" else None
        return cls(
            last_user=users[-1] if users else "",
            tool_results=len(results),
            last_tool_result=results[-1] if results else None,
            has_tools=bool(body.get("tools")),
            model=str(body.get("model", "")),
            api="chat",
            tools=tools,
            forced_tool=forced,
            structured=fmt.get("type") in ("json_schema", "json_object"),
            schema=schema if isinstance(schema, dict) else None,
        )

    @classmethod
    def of_responses(cls, body: dict[str, Any]) -> "Conversation":
        """A Responses API request: `input` is a string or a list of items."""
        items = body.get("input")
        users: list[str] = []
        results: list[str] = []
        if isinstance(items, str):
            users.append(items)
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            kind = item.get("type")
            if kind in (None, "message") and item.get("role") == "user":
                users.append(_text(item.get("content")))
            elif kind == "function_call_output":
                results.append(_text(item.get("output")))
        tools = [
            (str(t.get("name", "")), t.get("parameters") or {})
            for t in body.get("tools") or []
            if isinstance(t, dict) and t.get("type", "function") == "function"
        ]
        choice = body.get("tool_choice")
        forced = None
        if isinstance(choice, dict) and choice.get("type") == "function":
            forced = choice.get("name")
        elif choice == "required":
            forced = _first_tool(tools)
        fmt = (body.get("text") or {}).get("format") if isinstance(body.get("text"), dict) else None
        fmt = fmt if isinstance(fmt, dict) else {}
        schema = fmt.get("schema") if fmt.get("type") == "json_schema" else None
        return cls(
            last_user=users[-1] if users else "",
            tool_results=len(results),
            last_tool_result=results[-1] if results else None,
            has_tools=bool(body.get("tools")),
            model=str(body.get("model", "")),
            api="responses",
            tools=tools,
            forced_tool=forced,
            structured=fmt.get("type") in ("json_schema", "json_object"),
            schema=schema if isinstance(schema, dict) else None,
        )

    @classmethod
    def of_messages(cls, body: dict[str, Any]) -> "Conversation":
        """An Anthropic Messages request: tool results are user-message blocks of type tool_result."""
        users: list[str] = []
        results: list[str] = []
        for m in body.get("messages") or []:
            if not isinstance(m, dict) or m.get("role") != "user":
                continue
            content = m.get("content")
            if isinstance(content, str):
                users.append(content)
                continue
            texts = []
            for block in content if isinstance(content, list) else []:
                if not isinstance(block, dict):
                    continue
                if block.get("type") == "tool_result":
                    results.append(_text(block.get("content")))
                elif block.get("type") == "text":
                    texts.append(str(block.get("text", "")))
            if texts:
                users.append(" ".join(texts))
        tools = [
            (str(t.get("name", "")), t.get("input_schema") or {})
            for t in body.get("tools") or []
            if isinstance(t, dict) and "name" in t and t.get("type") in (None, "custom")
        ]
        choice = body.get("tool_choice")
        forced = None
        if isinstance(choice, dict) and choice.get("type") == "tool":
            forced = choice.get("name")
        elif isinstance(choice, dict) and choice.get("type") == "any":
            forced = _first_tool(tools)
        fmt = (body.get("output_config") or {}).get("format") if isinstance(body.get("output_config"), dict) else None
        fmt = fmt if isinstance(fmt, dict) else body.get("output_format") if isinstance(body.get("output_format"), dict) else {}
        schema = fmt.get("schema") if fmt.get("type") == "json_schema" else None
        return cls(
            last_user=users[-1] if users else "",
            tool_results=len(results),
            last_tool_result=results[-1] if results else None,
            has_tools=bool(body.get("tools")),
            model=str(body.get("model", "")),
            api="messages",
            tools=tools,
            forced_tool=forced,
            structured=fmt.get("type") in ("json_schema", "json_object"),
            schema=schema if isinstance(schema, dict) else None,
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
            if key == "api" and self.api != str(want):
                return False
            if key == "structured" and self.structured != bool(want):
                return False
            if key == "forced_tool":
                if isinstance(want, bool):
                    if (self.forced_tool is not None) != want:
                        return False
                elif self.forced_tool != str(want):
                    return False
        return True

    def fill(self, template: str) -> str:
        return (
            template.replace("{last_user}", self.last_user)
            .replace("{last_tool_result}", self.last_tool_result or "")
            .replace("{tool_results}", str(self.tool_results))
        )

    def tool_schema(self, name: str) -> dict[str, Any]:
        return next((params for n, params in self.tools if n == name), {})


@dataclass
class Reply:
    """What to answer, independent of the API: text, tool calls ({name, arguments as a JSON string})."""

    content: str | None
    calls: list[dict[str, str]]
    finish: str


def _arguments(value: Any) -> str:
    if value is None:
        return "{}"
    return value if isinstance(value, str) else json.dumps(value)


def plan_reply(script: Script, conv: Conversation, sample: int = 0) -> Reply:
    """The reply to a request with facts `conv`; `sample` is how many identical requests came before."""
    rule = next((r for r in script.replies if conv.matches(r.get("when"))), None)
    generated = rule is None or any(rule is d for d in DEFAULT_REPLIES)  # nothing scripted for this request
    eff: dict[str, Any] = {} if rule is None else {k: v for k, v in rule.items() if k not in ("when", "samples")}
    if rule is not None and rule.get("samples"):
        pick = rule["samples"][sample % len(rule["samples"])]
        for k in ("content", "json", "tool_calls", "arguments"):
            eff.pop(k, None)
        eff.update({"content": pick} if isinstance(pick, str) else pick)
    content = conv.fill(str(eff["content"])) if eff.get("content") is not None else None
    finish = eff.get("finish_reason")
    calls = [{"name": str(c["name"]), "arguments": _arguments(c.get("arguments"))} for c in eff.get("tool_calls") or []]
    if calls:
        return Reply(content, calls, finish or "tool_calls")
    if conv.forced_tool:
        if not generated and eff.get("arguments") is not None:
            args = eff["arguments"]
        elif not generated and "json" in eff:
            args = eff["json"]
        else:
            args = instance_of(conv.tool_schema(conv.forced_tool))
        return Reply(None, [{"name": conv.forced_tool, "arguments": _arguments(args)}], finish or "tool_calls")
    if conv.structured:
        if not generated and "json" in eff:
            text = json.dumps(eff["json"])
        elif not generated and content is not None:
            text = content
        else:
            text = json.dumps(instance_of(conv.schema))
        return Reply(text, [], finish or "stop")
    if rule is None:
        return Reply("", [], "stop")
    if content is None and "json" in eff:
        content = json.dumps(eff["json"])
    return Reply(content, [], finish or "stop")


def choose_reply(script: Script, body: dict[str, Any]) -> tuple[str | None, list[dict[str, Any]], str]:
    """(content, tool_calls as [{name, arguments}], finish_reason) for a chat request (first sample)."""
    reply = plan_reply(script, Conversation.of(body))
    return reply.content, reply.calls, reply.finish
