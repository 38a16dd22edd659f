"""The recorded answer files of `pytest --llmtrace` (llmtrace/capture/answer_files.py), piece by piece: an answer
kept and given back, a stable order, secrets replaced, file names, the nearest request of a miss."""

from __future__ import annotations

import json
from pathlib import Path

from llmtrace.redact import Redactor
from llmtrace.capture import answer_files as files


def _call(question: str, reply: str) -> dict:
    return {"endpoint": "openai.chat.completions",
            "request": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": question}]},
            "response": {"status": 200, "body": {"choices": [{"message": {"role": "assistant", "content": reply}}]}}}


def test_a_stream_is_kept_as_its_events_and_given_back_as_them():
    parts = [b'event: response.created\ndata: {"type": "response.created", "n": 1}\n\n',
             b'data: {"choices": [{"delta": {"content": "hi"}}]}\n\n', b"data: [DONE]\n\n", b": keep-alive\n\n"]
    kept = files.to_file(200, parts, True)
    assert kept["events"][:3] == [{"event": "response.created", "data": {"type": "response.created", "n": 1}},
                                  {"data": {"choices": [{"delta": {"content": "hi"}}]}}, {"data": "[DONE]"}]
    assert kept["events"][3] == {"raw": ": keep-alive"}
    entry = files.to_entry(json.loads(json.dumps(kept)))
    assert entry["sse"] and entry["headers"] == [["content-type", "text/event-stream"]]
    assert entry["parts"][0] == b'event: response.created\ndata: {"type": "response.created", "n": 1}\n\n'
    assert entry["parts"][2] == b"data: [DONE]\n\n"
    assert files.to_file(200, entry["parts"], True) == kept  # kept again: the same


def test_a_whole_body_is_kept_as_json():
    kept = files.to_file(200, [b'{"id": "x", ', b'"choices": []}'], False)
    assert kept == {"status": 200, "body": {"id": "x", "choices": []}}
    assert json.loads(files.to_entry(kept)["parts"][0]) == {"id": "x", "choices": []}
    assert files.to_file(200, [b"not json"], False) == {"status": 200, "text": "not json"}


def test_the_order_is_stable_whatever_order_calls_finished_in():
    calls = [_call(f"question {i}", f"answer {i}") for i in range(5)]
    first = files.render("t::x", calls, Redactor())
    assert files.render("t::x", list(reversed(calls)), Redactor()) == first
    assert first.startswith('{\n  "llmtrace_answers": 1,\n  "test": "t::x",\n  "calls": [')


def test_secrets_never_reach_the_file():
    key = "sk-proj-abcdefghijklmnopqrstuvwxyz012345"
    call = _call(f"my key is {key}", "noted")
    call["request"]["api_key"] = "some-credential-value"
    text = files.render("t::x", [call], Redactor({key}))
    assert key not in text and "some-credential-value" not in text
    assert "[REDACTED]" in text


def test_file_names_are_safe():
    assert files.answers_path(Path("/p/tests/test_a.py"), "test_b[gpt-4o/mini-1]") == \
        Path("/p/tests/recorded_answers/test_a/test_b_gpt-4o_mini-1.json")
    assert files.answers_path(Path("/p/t/test_a.py"), "../../etc").parent == Path("/p/t/recorded_answers/test_a")


def test_replay_matches_identical_requests_in_order_and_refuses_the_rest(tmp_path):
    path = tmp_path / "recorded_answers" / "test_m" / "test_x.json"
    files.write_private(path, files.render("t::x", [_call("same", "first"), _call("other", "o")], None))
    data = json.loads(path.read_text())
    data["calls"].append(_call("same", "second"))  # a second answer to the same request
    path.write_text(json.dumps(data))
    answers = files.TestAnswers(path, "none", "t::x")
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "same"}]}
    got = [json.loads(answers.answer("llm", "openai.chat.completions", body).entry["parts"][0]) for _ in range(2)]
    assert [g["choices"][0]["message"]["content"] for g in got] == ["first", "second"]
    refused = answers.answer("llm", "openai.chat.completions", body)  # a third ask: none recorded
    assert isinstance(refused, files.NoRecordedAnswer)
    assert "-user: other" in str(refused) and "+user: same" in str(refused)  # the nearest one left
    assert answers.misses == [str(refused)]


def test_re_recording_keeps_an_answer_that_differs_only_in_its_own_id(tmp_path):
    path = tmp_path / "recorded_answers" / "test_m" / "test_x.json"
    first = _call("q", "a")
    first["response"]["body"].update(id="chatcmpl-1", created=1)
    first["response"]["body"]["choices"][0]["message"]["tool_calls"] = [{"id": "call_1_0", "type": "function"}]
    files.write_private(path, files.render("t::x", [first], None))
    before = path.read_bytes()
    same = json.loads(json.dumps(first))
    same["response"]["body"].update(id="chatcmpl-2", created=2)  # only the response's own id and time
    answers = files.TestAnswers(path, "all", "t::x")
    answers.recorded.append(same)
    assert answers.finish(None) is False and path.read_bytes() == before
    other = json.loads(json.dumps(same))
    other["response"]["body"]["choices"][0]["message"]["tool_calls"][0]["id"] = "call_2_0"  # quoted by the next request
    answers = files.TestAnswers(path, "all", "t::x")
    answers.recorded.append(other)
    assert answers.finish(None) is True and b"call_2_0" in path.read_bytes()
