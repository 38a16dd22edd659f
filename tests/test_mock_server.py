"""The scripted server speaks the OpenAI API well enough for the real SDK, and injects faults."""

from __future__ import annotations

import base64
import enum
import importlib.util
import json
import struct
import time
import urllib.request
from typing import Optional

import httpx
import openai
import pytest
from pydantic import BaseModel, Field

from conftest import in_ci, skip_unless_ci

from llmtrace.mock import MockServer, Script
from llmtrace.mock.schema import instance_of


def client(server: MockServer, **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0, **kw)


def parse(c: openai.OpenAI, **kw):
    """chat.completions.parse; older openai SDKs (the 0.3 line's) have it under client.beta only."""
    completions = c.chat.completions
    return (completions.parse if hasattr(completions, "parse") else c.beta.chat.completions.parse)(**kw)


def text_of(message) -> str:
    """message.text: a property on langchain-core 1.x, a method on late 0.3 releases, absent before."""
    text = getattr(message, "text", None)
    if text is not None:
        return text if isinstance(text, str) else text()
    if isinstance(message.content, str):
        return message.content
    return "".join(b if isinstance(b, str) else b.get("text", "") for b in message.content
                   if isinstance(b, str) or (isinstance(b, dict) and b.get("type") == "text"))


# The Responses API: openai >= 1.66; ChatOpenAI(use_responses_api=True): langchain-openai >= 0.3.9.
needs_responses = pytest.mark.skipif(importlib.util.find_spec("openai.resources.responses") is None and not in_ci(),
                                     reason="the installed openai SDK has no Responses API (openai >= 1.66)")


def _chat_openai_responses() -> bool:
    from langchain_openai import ChatOpenAI

    return "use_responses_api" in ChatOpenAI.model_fields


def test_tool_calls_parallel_and_templates(mock_server):
    server = mock_server({"replies": [
        {"when": {"tool_results": 0}, "tool_calls": [{"name": "a", "arguments": {"x": 1}}, {"name": "b", "arguments": {"y": 2}}]},
        {"content": "got {last_tool_result} after {tool_results}"},
    ]})
    c = client(server)
    r = c.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "go"}])
    calls = r.choices[0].message.tool_calls
    assert [(t.function.name, json.loads(t.function.arguments)) for t in calls] == [("a", {"x": 1}), ("b", {"y": 2})]
    assert r.choices[0].finish_reason == "tool_calls"
    msgs = [{"role": "user", "content": "go"}, r.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": calls[0].id, "content": "10"}, {"role": "tool", "tool_call_id": calls[1].id, "content": "20"}]
    r2 = c.chat.completions.create(model="gpt-4o-mini", messages=msgs)
    assert r2.choices[0].message.content == "got 20 after 2"
    assert r2.model == "gpt-4o-mini-2024-07-18"
    assert r2.usage.prompt_tokens > r.usage.prompt_tokens > 0


def test_streaming_with_and_without_usage(mock_server):
    server = mock_server({"replies": [{"content": "one two three"}]})
    c = client(server)
    chunks = list(c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], stream=True))
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks) == "one two three"
    assert all(ch.choices for ch in chunks)
    chunks = list(c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], stream=True,
                                            stream_options={"include_usage": True}))
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0


def test_streamed_tool_call_arguments_reassemble(mock_server):
    server = mock_server({"replies": [{"tool_calls": [{"name": "multiply", "arguments": {"first_int": 243, "second_int": 36}}]}]})
    args = ""
    for ch in client(server).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], stream=True):
        for tc in ch.choices[0].delta.tool_calls or []:
            args += tc.function.arguments or ""
    assert json.loads(args) == {"first_int": 243, "second_int": 36}


def test_fault_sequence_with_retry_after(mock_server):
    server = mock_server({"faults": [{"status": 429, "retry_after": 0.01}, 503, 200]})
    c = client(server)
    with pytest.raises(openai.RateLimitError) as e:
        c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert e.value.response.headers["retry-after"] == "0.01"
    with pytest.raises(openai.InternalServerError):
        c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}]).choices
    assert server.stats.by_status == {429: 1, 503: 1, 200: 1}


def test_insufficient_quota_and_auth_errors(mock_server):
    server = mock_server({"faults": [{"status": 429, "code": "insufficient_quota"}, 401]})
    c = client(server)
    with pytest.raises(openai.RateLimitError) as e:
        c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert e.value.code == "insufficient_quota"
    with pytest.raises(openai.AuthenticationError):
        c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])


def test_timeout_and_dropped_connection(mock_server):
    # The server stays silent for 120 s: the client's 0.3 s timeout fires first on any machine (had the
    # server closed the connection first, the error would be APIConnectionError, not a timeout).
    server = mock_server({"faults": [{"timeout": 120}, "drop"]})
    c = client(server, timeout=0.3)
    with pytest.raises(openai.APITimeoutError):
        c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.APIConnectionError):
        client(server).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])


def test_latency_is_injected(mock_server):
    server = mock_server({"latency_ms": 200})
    t0 = time.perf_counter()
    client(server).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert time.perf_counter() - t0 >= 0.2


def test_embeddings_models_and_stats(mock_server):
    server = mock_server()
    c = client(server)
    a, b, d = (c.embeddings.create(model="text-embedding-3-small", input=t).data[0].embedding
               for t in ("what is the weather in Berlin today", "what is the weather in Berlin", "recipe for pancakes"))
    assert a == c.embeddings.create(model="text-embedding-3-small", input="what is the weather in Berlin today").data[0].embedding
    cos = lambda x, y: sum(i * j for i, j in zip(x, y))  # noqa: E731 - vectors are unit length
    assert cos(a, b) > 0.8 > 0.3 > cos(a, d)
    assert [m.id for m in c.models.list().data] == ["gpt-4o-mini-2024-07-18"]
    stats = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{server.port}/_mock/stats").read())
    assert stats["by_path"]["/v1/embeddings"] == 4


def test_binds_loopback_only():
    with pytest.raises(ValueError):
        MockServer(Script(), host="0.0.0.0")
    with MockServer() as s:
        assert s.httpd.server_address[0] == "127.0.0.1"
        assert httpx.get(f"http://127.0.0.1:{s.port}/v1/models").status_code == 200


def test_script_files_json_and_yaml(tmp_path):
    (tmp_path / "s.yaml").write_text("model: m-1\nlatency_ms: 5\nfaults: [429, timeout]\nreplies:\n  - content: hi\n")
    s = Script.load(tmp_path / "s.yaml")
    assert (s.model, s.latency_ms, [f.status for f in s.faults], s.faults[1].timeout) == ("m-1", 5, [429, 200], 30.0)
    (tmp_path / "bad.json").write_text('{"replies": []}')
    with pytest.raises(ValueError):
        Script.load(tmp_path / "bad.json")


def test_stream_cut_midway(mock_server):
    server = mock_server({"faults": [{"cut_after": 2}], "replies": [{"content": "one two three four"}]})
    seen = []
    # older SDKs (the 0.3 line) let httpx's RemoteProtocolError through instead
    with pytest.raises((openai.APIConnectionError, httpx.RemoteProtocolError)):
        for ch in client(server).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], stream=True):
            seen.append(ch)
    assert len(seen) == 2
    # The next stream is whole.
    chunks = list(client(server).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "one two three four"


def test_mock_command_serves_until_interrupted(tmp_path):
    import os
    import re
    import signal
    import subprocess
    import sys

    from conftest import HANG, ROOT, default_sigint

    (tmp_path / "s.json").write_text('{"model": "m-9", "replies": [{"content": "pong"}]}')
    p = subprocess.Popen([sys.executable, "-m", "llmtrace", "mock", "--script", str(tmp_path / "s.json"), "--port", "0",
                          "--faults", "503,200"], stderr=subprocess.PIPE, text=True, cwd=str(ROOT), env=os.environ.copy(),
                         preexec_fn=default_sigint)
    try:
        line = p.stderr.readline()  # the port it picked (0: a free one, so no other process can hold it)
        found = re.search(r"serving http://127\.0\.0\.1:(\d+)/v1", line)
        assert found, line
        port = int(found.group(1))
        c = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=0)
        with pytest.raises(openai.InternalServerError):
            c.chat.completions.create(model="x", messages=[{"role": "user", "content": "ping"}])
        r = c.chat.completions.create(model="x", messages=[{"role": "user", "content": "ping"}])
        assert (r.model, r.choices[0].message.content) == ("m-9", "pong")
    finally:
        p.send_signal(signal.SIGINT)
        p.wait(HANG)
    assert p.returncode == 0


# --- samples, structured output, tool_choice, Responses, embeddings, Anthropic Messages, usage ----


class Genre(str, enum.Enum):
    drama = "drama"
    scifi = "science fiction"


class Studio(BaseModel):
    name: str
    founded: int


class Movie(BaseModel):
    title: str
    year: int
    rating: float
    released: bool
    genres: list[Genre]
    cast: list[str] = Field(min_length=1)
    studio: Studio
    sequel_of: Optional[Studio] = None


class Person(BaseModel):
    name: str
    age: int


PERSON_TOOL = {"type": "function", "function": {"name": "Person", "parameters": Person.model_json_schema()}}
WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 3}}, "required": ["city"]}}}


def stats_json(server: MockServer) -> dict:
    return json.loads(urllib.request.urlopen(f"http://127.0.0.1:{server.port}/_mock/stats").read())


def sse_events(text: str) -> list[tuple[str | None, str]]:
    out = []
    for block in text.split("\n\n"):
        if block.strip():
            fields = dict(line.split(": ", 1) for line in block.split("\n"))
            out.append((fields.get("event"), fields["data"]))
    return out


SAMPLES_SCRIPT = {"replies": [
    {"when": {"user_contains": "resample"}, "samples": [
        "not json {",
        {"json": {"name": "Ada", "age": 36}},
        {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
    ]},
    {"content": "plain"},
]}


def _sample_sequence(server: MockServer) -> list:
    c = client(server)
    a = [{"role": "user", "content": "resample this"}]
    b = [{"role": "user", "content": "resample that"}]
    seen = []
    for msgs in (a, a, b, a, a):
        r = c.chat.completions.create(model="m", messages=msgs).choices[0]
        seen.append(r.message.content if not r.message.tool_calls else [t.function.name for t in r.message.tool_calls])
    # a streamed request with the same body counts as identical (stream and stream_options are left out)
    chunks = list(c.chat.completions.create(model="m", messages=a, stream=True, stream_options={"include_usage": True}))
    seen.append("".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices))
    return seen


def test_samples_differ_on_identical_requests_and_repeat_on_a_fresh_server(mock_server):
    first = _sample_sequence(mock_server(SAMPLES_SCRIPT))
    assert first == ["not json {", '{"name": "Ada", "age": 36}', "not json {", ["get_weather"], "not json {",
                     '{"name": "Ada", "age": 36}']
    assert _sample_sequence(mock_server(SAMPLES_SCRIPT)) == first
    server = mock_server(SAMPLES_SCRIPT)
    c = client(server)
    msgs = [{"role": "user", "content": "resample this"}]
    assert c.chat.completions.create(model="m", messages=msgs).choices[0].message.content == "not json {"
    urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{server.port}/_mock/reset", data=b"{}", method="POST",
                                                  headers=server.control_headers))
    assert c.chat.completions.create(model="m", messages=msgs).choices[0].message.content == "not json {"


def test_samples_let_a_langchain_retry_succeed(mock_server):
    from langchain_openai import ChatOpenAI

    server = mock_server({"replies": [{"samples": ["{oops", {"json": {"name": "Ada", "age": 36}}]}]})
    llm = ChatOpenAI(model="gpt-4o-mini", base_url=server.base_url, api_key="k", max_retries=0)
    structured = llm.with_structured_output(Person)  # method json_schema: parse() fails on the first sample
    assert structured.with_retry(stop_after_attempt=2, wait_exponential_jitter=False).invoke("who?") == Person(name="Ada", age=36)
    assert server.stats.by_path["/v1/chat/completions"] == 2
    assert server.stats.bodies[0]["response_format"]["type"] == "json_schema"


def test_schema_instances_validate():
    assert Movie.model_validate(instance_of(Movie.model_json_schema())).cast == ["example"]
    assert instance_of({"type": "object", "properties": {"n": {"type": "integer", "minimum": 5}, "x": {"type": ["null", "number"]},
                                                         "k": {"const": "fixed"}, "e": {"enum": ["b", "a"]}}}) == {"n": 5, "x": 1.0, "k": "fixed", "e": "b"}
    assert instance_of(None) == {} and instance_of({"type": "array", "items": {"type": "boolean"}, "minItems": 2}) == [True, True]


def test_structured_output_chat_completions(mock_server):
    server = mock_server({"replies": [
        {"when": {"user_contains": "Inception", "structured": True}, "content": "ignored",
         "json": {"title": "Inception", "year": 2010, "rating": 8.8, "released": True, "genres": ["science fiction"],
                  "cast": ["Leonardo DiCaprio"], "studio": {"name": "Legendary", "founded": 2000}}},
        {"when": {"user_contains": "verbatim"}, "content": '{"name": "Verb", "age": 2}'},
        {"when": {"structured": True}},
        {"content": "plain text"},
    ]})
    c = client(server)
    r = parse(c, model="m", messages=[{"role": "user", "content": "Inception facts"}], response_format=Movie)
    movie = r.choices[0].message.parsed
    assert (movie.title, movie.genres, movie.studio.name) == ("Inception", [Genre.scifi], "Legendary")
    assert server.stats.bodies[-1]["response_format"]["type"] == "json_schema"
    # no json/content in the matching rule: a minimal instance generated from the schema ($defs, enum, anyOf, minItems)
    movie = parse(c, model="m", messages=[{"role": "user", "content": "any film"}], response_format=Movie).choices[0].message.parsed
    assert movie == Movie(title="example", year=1, rating=1.0, released=True, genres=[], cast=["example"],
                          studio=Studio(name="example", founded=1), sequel_of=Studio(name="example", founded=1))
    # content is used verbatim
    person = parse(c, model="m", messages=[{"role": "user", "content": "verbatim"}], response_format=Person).choices[0].message.parsed
    assert person == Person(name="Verb", age=2)
    # json_object with no schema → {}
    r = c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], response_format={"type": "json_object"})
    assert json.loads(r.choices[0].message.content) == {}
    # without response_format the same request gets the plain rule
    assert c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}]).choices[0].message.content == "plain text"


def test_structured_output_with_the_default_script_is_generated(mock_server):
    person = parse(client(mock_server()), model="m", messages=[{"role": "user", "content": "x"}],
                   response_format=Person).choices[0].message.parsed
    assert person == Person(name="example", age=1)


def test_forced_tool_choice(mock_server):
    server = mock_server({"replies": [
        {"when": {"user_contains": "Ada"}, "content": "text is ignored when a tool is forced", "arguments": {"name": "Ada", "age": 36}},
        {"when": {"user_contains": "Grace"}, "json": {"name": "Grace", "age": 85}},
        {"when": {"user_contains": "scripted"}, "tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]},
        {"when": {"forced_tool": False}, "content": "nothing forced"},
        {"content": "forced, nothing scripted"},
    ]})
    c = client(server)

    def call(text: str, choice) -> list:
        msg = c.chat.completions.create(model="m", messages=[{"role": "user", "content": text}], tools=[PERSON_TOOL, WEATHER_TOOL],
                                        tool_choice=choice).choices[0].message
        return [(t.function.name, json.loads(t.function.arguments)) for t in msg.tool_calls or []] or msg.content

    by_name = {"type": "function", "function": {"name": "Person"}}
    assert call("Ada", by_name) == [("Person", {"name": "Ada", "age": 36})]
    assert call("Grace", by_name) == [("Person", {"name": "Grace", "age": 85})]
    assert call("anyone", {"type": "function", "function": {"name": "get_weather"}}) == [("get_weather", {"city": "example", "days": 3})]
    assert call("anyone", "required") == [("Person", {"name": "example", "age": 1})]  # the first tool
    assert call("scripted", by_name) == [("get_weather", {"city": "Oslo"})]  # the rule's own tool_calls win
    assert call("anyone", "auto") == "nothing forced"


def test_langchain_function_calling_structured_output(mock_server):
    from langchain_openai import ChatOpenAI

    server = mock_server({"replies": [{"when": {"user_contains": "Ada"}, "arguments": {"name": "Ada", "age": 36}}, {"content": "hi"}]})
    llm = ChatOpenAI(model="gpt-4o-mini", base_url=server.base_url, api_key="k", max_retries=0)
    structured = llm.with_structured_output(Person, method="function_calling")
    assert structured.invoke("Tell me about Ada") == Person(name="Ada", age=36)
    assert structured.invoke("Tell me about someone") == Person(name="example", age=1)
    assert server.stats.bodies[-1]["tool_choice"] == {"type": "function", "function": {"name": "Person"}}


RESPONSES_SCRIPT = {"replies": [
    {"when": {"user_contains": "weather", "tool_results": 0}, "tool_calls": [{"name": "get_weather", "arguments": {"city": "Berlin"}}]},
    {"when": {"tool_results": 1}, "content": "It is {last_tool_result} after {tool_results} result."},
    {"when": {"user_contains": "Ada", "api": "responses"}, "json": {"name": "Ada", "age": 36}},
    {"when": {"structured": True}},
    {"content": "one two three"},
]}
R_WEATHER = {"type": "function", "name": "get_weather", "parameters": WEATHER_TOOL["function"]["parameters"], "strict": False}


@needs_responses
def test_responses_create_and_parse(mock_server):
    from openai.types.responses import Response

    server = mock_server(RESPONSES_SCRIPT)
    c = client(server)
    r = c.responses.create(model="gpt-4o-mini", input="hello", instructions="be brief")
    assert (r.output_text, r.status, r.object, r.model) == ("one two three", "completed", "response", "gpt-4o-mini-2024-07-18")
    assert r.id.startswith("resp_mock") and r.output[0].id.startswith("msg_")
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens and r.usage.output_tokens > 0
    Response.model_validate(r.to_dict())  # strict validation, not only the SDK's lenient construct

    r = c.responses.create(model="m", input=[{"role": "user", "content": [{"type": "input_text", "text": "weather in Berlin?"}]}], tools=[R_WEATHER])
    call = r.output[0]
    assert (call.type, call.name, json.loads(call.arguments), call.status) == ("function_call", "get_weather", {"city": "Berlin"}, "completed")
    assert call.id.startswith("fc_") and call.call_id.startswith("call_")
    Response.model_validate(r.to_dict())
    follow = [{"role": "user", "content": "weather in Berlin?"},
              {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
              {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}]
    assert c.responses.create(model="m", input=follow, tools=[R_WEATHER]).output_text == "It is sunny after 1 result."

    assert c.responses.parse(model="m", input="about Ada", text_format=Person).output_parsed == Person(name="Ada", age=36)
    assert c.responses.parse(model="m", input="someone", text_format=Person).output_parsed == Person(name="example", age=1)
    assert server.stats.bodies[-1]["text"]["format"]["type"] == "json_schema"
    forced = c.responses.create(model="m", input="hello", tools=[R_WEATHER], tool_choice={"type": "function", "name": "get_weather"})
    assert json.loads(forced.output[0].arguments) == {"city": "example", "days": 3}


@needs_responses
def test_responses_stream_events_and_usage(mock_server):
    from openai.types.responses import ResponseStreamEvent
    from pydantic import TypeAdapter

    server = mock_server(RESPONSES_SCRIPT)
    raw = httpx.post(f"http://127.0.0.1:{server.port}/v1/responses", json={"model": "m", "input": "hello", "stream": True})
    events = sse_events(raw.text)
    names = [e for e, _ in events]
    assert names == ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
                     "response.output_text.delta", "response.output_text.delta", "response.output_text.delta",
                     "response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"]
    assert "[DONE]" not in raw.text
    payloads = [json.loads(d) for _, d in events]
    assert [p["sequence_number"] for p in payloads] == list(range(len(events)))
    assert all(p["type"] == e for p, e in zip(payloads, names))
    adapter = TypeAdapter(ResponseStreamEvent)
    for p in payloads:
        adapter.validate_python(p)
    sent = payloads[-1]["response"]["usage"]
    assert server.stats.as_dict()["usage"] == {"input_tokens": sent["input_tokens"], "output_tokens": sent["output_tokens"]}

    c = client(server)
    with c.responses.stream(model="m", input="weather?", tools=[R_WEATHER]) as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_response()
    assert kinds.count("response.function_call_arguments.delta") == 3 and "response.function_call_arguments.done" in kinds
    assert json.loads(final.output[0].arguments) == {"city": "Berlin"}
    with c.responses.stream(model="m", input="about Ada", text_format=Person) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert final.output_parsed == Person(name="Ada", age=36) and "".join(deltas) == '{"name": "Ada", "age": 36}'
    assert final.usage.input_tokens > 0 and final.usage.output_tokens == 7  # 26 characters, ~4 a token


@needs_responses
def test_responses_faults(mock_server):
    server = mock_server({"faults": [{"status": 429, "retry_after": 0.01}, {"cut_after": 3}, "drop"], "replies": [{"content": "a b c d e f"}]})
    c = client(server)
    with pytest.raises(openai.RateLimitError):
        c.responses.create(model="m", input="x")
    seen = []
    with pytest.raises(openai.APIConnectionError):
        for event in c.responses.create(model="m", input="x", stream=True):
            seen.append(event.type)
    assert seen == ["response.created", "response.in_progress", "response.output_item.added"]
    with pytest.raises(openai.APIConnectionError):
        c.responses.create(model="m", input="x")
    assert c.responses.create(model="m", input="x").output_text == "a b c d e f"
    assert server.stats.as_dict()["usage"]["output_tokens"] == 3  # only the whole reply counts


@needs_responses
def test_langchain_chat_openai_responses_api(mock_server):
    if not _chat_openai_responses():
        skip_unless_ci("the installed langchain-openai has no use_responses_api (langchain-openai >= 0.3.9)")
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_openai import ChatOpenAI

    server = mock_server(RESPONSES_SCRIPT)
    llm = ChatOpenAI(model="gpt-4o-mini", base_url=server.base_url, api_key="k", max_retries=0, use_responses_api=True)
    replies = [llm.invoke("hello")]
    assert text_of(replies[0]) == "one two three"
    chunks = list(llm.stream("hello"))
    streamed = chunks[0]
    for ch in chunks[1:]:
        streamed = streamed + ch
    replies.append(streamed)
    assert text_of(streamed) == "one two three" and streamed.usage_metadata == replies[0].usage_metadata
    bound = llm.bind_tools([R_WEATHER])
    ask = bound.invoke("weather in Berlin?")
    replies.append(ask)
    assert [(t["name"], t["args"]) for t in ask.tool_calls] == [("get_weather", {"city": "Berlin"})]
    answer = bound.invoke([HumanMessage("weather in Berlin?"), ask, ToolMessage("sunny", tool_call_id=ask.tool_calls[0]["id"])])
    replies.append(answer)
    assert text_of(answer) == "It is sunny after 1 result."
    result = llm.with_structured_output(Person, include_raw=True).invoke("Tell me about Ada")
    replies.append(result["raw"])
    assert result["parsed"] == Person(name="Ada", age=36)
    assert all(b["model"] == "gpt-4o-mini" and "input" in b for b in server.stats.bodies)
    assert set(server.stats.by_path) == {"/v1/responses"}
    sums = {"input_tokens": sum(m.usage_metadata["input_tokens"] for m in replies),
            "output_tokens": sum(m.usage_metadata["output_tokens"] for m in replies)}
    assert stats_json(server)["usage"] == sums


def test_embeddings_base64_and_usage(mock_server):
    server = mock_server({"embedding_dim": 16})
    c = client(server)
    floats = c.embeddings.create(model="text-embedding-3-small", input="the weather in Berlin", encoding_format="float")
    b64 = c.embeddings.create(model="text-embedding-3-small", input="the weather in Berlin", encoding_format="base64")
    raw = b64.data[0].embedding
    assert isinstance(raw, str)
    decoded = list(struct.unpack("<16f", base64.b64decode(raw)))
    assert decoded == pytest.approx(floats.data[0].embedding, abs=1e-6)
    default = c.embeddings.create(model="text-embedding-3-small", input="the weather in Berlin")  # the SDK's own base64 round trip
    assert default.data[0].embedding == pytest.approx(floats.data[0].embedding, abs=1e-6)
    assert floats.usage.prompt_tokens == floats.usage.total_tokens == 6  # 21 characters, ~4 a token
    tokens = c.embeddings.create(model="text-embedding-3-small", input=[[101, 102, 103], [7]], encoding_format="float")
    assert tokens.usage.prompt_tokens == 4 and len(tokens.data) == 2

    from langchain_openai import OpenAIEmbeddings

    emb = OpenAIEmbeddings(model="text-embedding-3-small", base_url=server.base_url, api_key="k", check_embedding_ctx_length=False)
    vectors = emb.embed_documents(["the weather in Berlin", "pancakes"])
    assert server.stats.bodies[-1]["encoding_format"] == "base64"
    assert vectors[0] == pytest.approx(floats.data[0].embedding, abs=1e-6) and len(vectors[1]) == 16
    assert stats_json(server)["usage"] == {"input_tokens": 6 * 3 + 4 + 6 + 2, "output_tokens": 0}


def test_whole_replies_leave_in_one_write(mock_server):
    server = mock_server()
    handler = server.httpd.RequestHandlerClass
    assert handler.disable_nagle_algorithm is True
    writes: list[int] = []
    setup = handler.setup

    def counting_setup(self):
        setup(self)
        inner = self.wfile

        class Counting:
            def write(self, data):
                writes.append(len(data))
                return inner.write(data)

            def __getattr__(self, name):
                return getattr(inner, name)

        self.wfile = Counting()

    handler.setup = counting_setup
    try:
        client(server).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        client(server).embeddings.create(model="e", input="x")
    finally:
        handler.setup = setup
    assert len(writes) == 2  # one per reply: status line, headers and body together


@needs_responses
def test_usage_sums_for_tests(mock_server):
    server = mock_server({"replies": [{"content": "four words right here"}]})
    c = client(server)
    msgs = [{"role": "user", "content": "count me"}]
    whole = c.chat.completions.create(model="m", messages=msgs).usage
    list(c.chat.completions.create(model="m", messages=msgs, stream=True))  # no usage asked for: adds nothing
    assert stats_json(server)["usage"] == {"input_tokens": whole.prompt_tokens, "output_tokens": whole.completion_tokens}
    last = list(c.chat.completions.create(model="m", messages=msgs, stream=True, stream_options={"include_usage": True}))[-1].usage
    resp = c.responses.create(model="m", input="count me").usage
    emb = c.embeddings.create(model="e", input="count me").usage
    assert stats_json(server)["usage"] == {
        "input_tokens": whole.prompt_tokens + last.prompt_tokens + resp.input_tokens + emb.prompt_tokens,
        "output_tokens": whole.completion_tokens + last.completion_tokens + resp.output_tokens,
    }
    server.stats.bodies.clear()
    urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{server.port}/_mock/reset", data=b"{}", method="POST",
                                                  headers=server.control_headers))
    assert stats_json(server)["usage"] == {"input_tokens": 0, "output_tokens": 0}
    server.set_faults([429, {"cut_after": 1}])
    with pytest.raises(openai.RateLimitError):
        c.chat.completions.create(model="m", messages=msgs)
    with pytest.raises(openai.APIConnectionError):
        list(c.chat.completions.create(model="m", messages=msgs, stream=True, stream_options={"include_usage": True}))
    assert stats_json(server)["usage"] == {"input_tokens": 0, "output_tokens": 0}


def test_script_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown key"):
        Script.from_dict({"replies": [{"contents": "typo"}]})
    with pytest.raises(ValueError, match="unknown `when` key"):
        Script.from_dict({"replies": [{"when": {"user_contain": "x"}, "content": "y"}]})
    with pytest.raises(ValueError, match="samples"):
        Script.from_dict({"replies": [{"samples": []}]})
    with pytest.raises(ValueError, match="api"):
        Script.from_dict({"replies": [{"when": {"api": "completions"}, "content": "y"}]})


ANTHROPIC_SCRIPT = {"replies": [
    {"when": {"user_contains": "weather", "tool_results": 0}, "content": "Let me check.",
     "tool_calls": [{"name": "get_weather", "arguments": {"city": "Berlin"}}]},
    {"when": {"tool_results": 1}, "content": "It is {last_tool_result}."},
    {"when": {"user_contains": "Ada"}, "json": {"name": "Ada", "age": 36}},
    {"when": {"structured": True}},
    {"when": {"api": "messages"}, "content": "hello from claude"},
]}


def test_anthropic_messages_wire_format(mock_server):

    server = mock_server(ANTHROPIC_SCRIPT)
    url = f"{server.anthropic_base_url}/v1/messages"
    body = {"model": "claude-haiku-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "weather in Berlin?"}],
            "tools": [{"name": "get_weather", "input_schema": WEATHER_TOOL["function"]["parameters"]}]}
    msg = httpx.post(url, json=body).json()
    assert (msg["type"], msg["role"], msg["model"], msg["stop_reason"], msg["stop_sequence"]) == ("message", "assistant", "claude-haiku-4-5", "tool_use", None)
    assert msg["id"].startswith("msg_mock")
    assert msg["content"][0] == {"type": "text", "text": "Let me check."}
    assert {k: msg["content"][1][k] for k in ("type", "name", "input")} == {"type": "tool_use", "name": "get_weather", "input": {"city": "Berlin"}}
    events = sse_events(httpx.post(url, json={**body, "stream": True}).text)
    names = [e for e, _ in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert names.count("content_block_start") == names.count("content_block_stop") == 2
    deltas = [json.loads(d)["delta"] for e, d in events if e == "content_block_delta"]
    assert {d["type"] for d in deltas} == {"text_delta", "input_json_delta"}
    assert json.loads("".join(d["partial_json"] for d in deltas if d["type"] == "input_json_delta")) == {"city": "Berlin"}
    final = json.loads(events[-2][1])
    assert final["delta"]["stop_reason"] == "tool_use" and final["usage"]["output_tokens"] == msg["usage"]["output_tokens"]
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": msg["content"][1]["id"], "content": "sunny"}]}
    again = httpx.post(url, json={**body, "messages": body["messages"] + [{"role": "assistant", "content": msg["content"]}, result]}).json()
    assert (again["content"], again["stop_reason"]) == ([{"type": "text", "text": "It is sunny."}], "end_turn")
    server.set_faults([{"status": 529}])
    err = httpx.post(url, json=body)
    assert err.status_code == 529 and err.json()["error"]["type"] == "overloaded_error"
    assert stats_json(server)["usage"]["input_tokens"] == 2 * msg["usage"]["input_tokens"] + again["usage"]["input_tokens"]


def test_chat_anthropic_against_the_messages_route(mock_server, monkeypatch):
    try:
        import langchain_anthropic
    except ImportError:
        skip_unless_ci("langchain-anthropic is not installed (the `test` extra)")
    from langchain_core.messages import HumanMessage, ToolMessage

    server = mock_server(ANTHROPIC_SCRIPT)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.anthropic_base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    llm = langchain_anthropic.ChatAnthropic(model="claude-haiku-4-5", max_retries=0)
    replies = [llm.invoke("hello")]
    assert text_of(replies[0]) == "hello from claude" and replies[0].response_metadata.get("model_name", replies[0].response_metadata.get("model")) == "claude-haiku-4-5"
    chunks = list(llm.stream("hello"))
    streamed = chunks[0]
    for ch in chunks[1:]:
        streamed = streamed + ch
    replies.append(streamed)
    assert text_of(streamed) == "hello from claude" and streamed.usage_metadata["output_tokens"] == replies[0].usage_metadata["output_tokens"]
    tools = [{"name": "get_weather", "description": "Weather in a city.", "input_schema": WEATHER_TOOL["function"]["parameters"]}]
    ask = llm.bind_tools(tools).invoke("weather in Berlin?")
    replies.append(ask)
    assert [(t["name"], t["args"]) for t in ask.tool_calls] == [("get_weather", {"city": "Berlin"})]
    answer = llm.bind_tools(tools).invoke([HumanMessage("weather in Berlin?"), ask, ToolMessage("sunny", tool_call_id=ask.tool_calls[0]["id"])])
    replies.append(answer)
    assert text_of(answer) == "It is sunny."
    for method in ("function_calling", "json_schema"):
        out = llm.with_structured_output(Person, method=method, include_raw=True).invoke("Tell me about Ada")
        replies.append(out["raw"])
        assert out["parsed"] == Person(name="Ada", age=36)
    assert set(server.stats.by_path) == {"/v1/messages"}
    sums = {"input_tokens": sum(m.usage_metadata["input_tokens"] for m in replies),
            "output_tokens": sum(m.usage_metadata["output_tokens"] for m in replies)}
    assert stats_json(server)["usage"] == sums
