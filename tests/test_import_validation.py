"""`llmtrace import` of damaged or hostile files: one line on stderr, exit code 2, nothing written.

The whole file is checked before the store is opened: types, ranges SQLite can hold, valid text,
bounded nesting, a span tree without cycles, and span ids that already belong to another trace.
"""

from __future__ import annotations

import copy
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import run_cli

TRACE_ID = "0190aaaa-0000-7000-8000-000000000001"


def _doc(trace_id: str = TRACE_ID, prefix: str = "s") -> dict[str, Any]:
    """A small valid document: a chain with an LLM call and a tool call under it."""
    def span(n: int, parent: str | None, kind: str, **extra: Any) -> dict[str, Any]:
        return {"id": f"{prefix}{n}", "trace_id": trace_id, "parent_id": parent, "kind": kind, "name": f"{kind}-{n}",
                "start_us": 1_700_000_000_000_000 + n, "end_us": 1_700_000_000_000_100 + n, "status": "ok", **extra}

    return {
        "format": "llmtrace.trace/1",
        "trace": {"id": trace_id, "name": "imported.py", "start_us": 1_700_000_000_000_000, "end_us": 1_700_000_001_000_000,
                  "status": "ok", "exit_code": 0, "argv": ["imported.py"], "tags": {"team": "core"},
                  "totals": {"llm_calls": 1, "tool_calls": 1, "cost": 0.5}, "feedback": [{"score": 1, "comment": None, "created_us": 5}]},
        "spans": [span(1, None, "chain", inputs={"q": "hi"}),
                  span(2, f"{prefix}1", "llm", model="gpt-4o-mini", input_tokens=3, output_tokens=4, cost=0.5,
                       request={"messages": [{"role": "user", "content": "hi"}]}, response={"choices": []}),
                  span(3, f"{prefix}1", "tool", outputs="42")],
    }


def _one_error_line(r, *needles: str) -> str:
    assert r.code == 2, (r.code, r.stderr)
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("llmtrace: error: "), r.stderr
    assert "Traceback" not in r.stderr
    for needle in needles:
        assert needle in r.stderr, r.stderr
    return r.stderr


def _stored_traces(home: Path) -> list[str]:
    db_file = home / "traces.db"
    if not db_file.exists():
        return []
    db = sqlite3.connect(str(db_file))
    try:
        return [r[0] for r in db.execute("SELECT id FROM traces ORDER BY id")]
    finally:
        db.close()


def test_a_valid_document_imports(llmtrace_home, tmp_path):
    f = tmp_path / "good.json"
    f.write_text(json.dumps(_doc()))
    r = run_cli("import", str(f))
    assert r.code == 0, r.stderr
    assert _stored_traces(llmtrace_home) == [TRACE_ID]


def test_non_json_is_one_line_and_exit_2(llmtrace_home, tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("these are my notes, not a trace\n")
    _one_error_line(run_cli("import", str(f)), "is not JSON or JSON lines")
    assert not (llmtrace_home / "traces.db").exists()  # not even a store was made


@pytest.mark.parametrize("content", [b"", b"\n  \n"], ids=["empty", "blank"])
def test_an_empty_file_is_an_error(llmtrace_home, tmp_path, content):
    f = tmp_path / "empty.json"
    f.write_bytes(content)
    _one_error_line(run_cli("import", str(f)), "is empty")
    assert _stored_traces(llmtrace_home) == []


def _drop(doc, *path):
    target = doc
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]


def _set(doc, value, *path):
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


# (how the document is damaged, what the one line says)
DAMAGED = {
    "no trace": (lambda d: _drop(d, "trace"), "has no 'trace'"),
    "no spans": (lambda d: _drop(d, "spans"), "has no 'spans'"),
    "trace without id": (lambda d: _drop(d, "trace", "id"), "trace has no 'id'"),
    "span without start": (lambda d: _drop(d, "spans", 1, "start_us"), "span 1 has no 'start_us'"),
    "span without parent_id": (lambda d: _drop(d, "spans", 0, "parent_id"), "span 0 has no 'parent_id'"),
    "start is a word": (lambda d: _set(d, "yesterday", "spans", 0, "start_us"), "span 0.start_us must be an integer"),
    "start is 1e30": (lambda d: _set(d, 1e30, "trace", "start_us"), "trace.start_us must be an integer"),
    "integer past int64": (lambda d: _set(d, 10**30, "spans", 1, "input_tokens"), "span 1.input_tokens is out of range"),
    "huge integer in a payload": (lambda d: _set(d, {"n": 10**30}, "spans", 1, "request"), "integer too large"),
    "name is a number": (lambda d: _set(d, 7, "spans", 2, "name"), "span 2.name must be a string"),
    "tags not a mapping": (lambda d: _set(d, ["a"], "trace", "tags"), "trace.tags must be an object"),
    "totals hold a string": (lambda d: _set(d, "many", "trace", "totals", "llm_calls"), "trace.totals.llm_calls must be an integer"),
    "feedback without score": (lambda d: _drop(d, "trace", "feedback", 0, "score"), "has no 'score'"),
    "spans not a list": (lambda d: _set(d, {"a": 1}, "spans"), "spans must be a list"),
    "span not an object": (lambda d: _set(d, "span", "spans", 0), "span 0 must be an object"),
    "unknown field": (lambda d: _set(d, 1, "spans", 0, "colour"), "unknown field 'colour'"),
    "cost is infinite": (lambda d: _set(d, float("inf"), "spans", 1, "cost"), "not finite"),
    "its own parent": (lambda d: _set(d, "s2", "spans", 1, "parent_id"), "its own ancestor"),
    "a parent cycle": (lambda d: (_set(d, "s3", "spans", 0, "parent_id"), _set(d, "s2", "spans", 2, "parent_id"),
                                  _set(d, "s1", "spans", 1, "parent_id")), "its own ancestor"),
    "span of another trace": (lambda d: _set(d, "0190bbbb-0000-7000-8000-000000000002", "spans", 2, "trace_id"), "belongs to trace"),
    "span id twice": (lambda d: _set(d, "s1", "spans", 2, "id"), "more than once"),
    "lone surrogate": (lambda d: _set(d, "\ud800", "spans", 0, "name"), "not valid Unicode"),
    "deep nesting": (lambda d: _set(d, json.loads("[" * 500 + "]" * 500), "spans", 0, "inputs"), "nested more than"),
}


@pytest.mark.parametrize("damage", list(DAMAGED))
def test_a_damaged_document_is_refused_whole(llmtrace_home, tmp_path, damage):
    """Each damage in a file of two documents: the first is fine, the second damaged. Nothing is written."""
    how, says = DAMAGED[damage]
    good, bad = _doc("0190cccc-0000-7000-8000-000000000003", prefix="g"), _doc()
    how(bad)
    f = tmp_path / "two.jsonl"
    f.write_text("\n".join(json.dumps(d, ensure_ascii=True) for d in (good, bad)) + "\n")
    line = _one_error_line(run_cli("import", str(f)), says)
    assert "document 2 of 2" in line
    assert _stored_traces(llmtrace_home) == []


def test_invalid_utf8_and_deep_json_are_one_line(llmtrace_home, tmp_path):
    f = tmp_path / "latin1.json"
    f.write_bytes(json.dumps(_doc()).replace('"hi"', '"h\\u00e9"').encode().replace(b"h\\u00e9", b"h\xe9"))
    _one_error_line(run_cli("import", str(f)), "is not UTF-8 text")
    f.write_text("[" * 100_000 + "]" * 100_000)  # past the JSON parser's recursion limit
    _one_error_line(run_cli("import", str(f)), str(f))
    assert _stored_traces(llmtrace_home) == []


def test_a_span_id_of_another_trace_in_the_store_is_refused(llmtrace_home, tmp_path):
    first = tmp_path / "first.json"
    first.write_text(json.dumps(_doc()))
    assert run_cli("import", str(first)).code == 0
    other = _doc("0190dddd-0000-7000-8000-000000000004", prefix="x")
    other["spans"][2]["id"] = "s3"  # the first trace's tool span
    f = tmp_path / "other.json"
    f.write_text(json.dumps(other))
    _one_error_line(run_cli("import", str(f)), "span s3", "already belongs to trace " + TRACE_ID, "nothing imported")
    assert _stored_traces(llmtrace_home) == [TRACE_ID]
    db = sqlite3.connect(str(llmtrace_home / "traces.db"))
    assert db.execute("SELECT trace_id FROM spans WHERE id = 's3'").fetchone() == (TRACE_ID,)
    db.close()
    # Re-importing the same trace over itself (--replace) keeps working: its spans are its own.
    assert run_cli("import", "--replace", str(first)).code == 0


# --- fuzz: whatever the file holds, one line and exit 2, or a clean import ---------------------------

_leaves = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**25), max_value=10**25),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["yesterday", "", "\ud800", "s1", "s2", TRACE_ID]),
)
_values = st.recursive(_leaves, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                       max_leaves=8)
_TRACE_KEYS = ["id", "name", "start_us", "end_us", "status", "argv", "tags", "totals", "feedback", "pid", "run_id", "bogus"]
_SPAN_KEYS = ["id", "trace_id", "parent_id", "kind", "name", "start_us", "end_us", "status", "inputs", "metadata",
              "tags", "input_tokens", "cost", "streamed", "tool_calls", "request", "bogus"]
_edit = st.one_of(
    st.tuples(st.just("trace"), st.sampled_from(_TRACE_KEYS), st.none() | _values),
    st.tuples(st.integers(0, 2), st.sampled_from(_SPAN_KEYS), st.none() | _values),
    st.tuples(st.just("doc"), st.sampled_from(["format", "trace", "spans", "extra"]), st.none() | _values),
)


def _apply(doc: dict[str, Any], edit: tuple) -> None:
    where, key, value = edit
    try:
        target = doc if where == "doc" else doc["trace"] if where == "trace" else doc["spans"][where]
    except (KeyError, IndexError, TypeError):  # an earlier edit removed or replaced what held it
        return
    if not isinstance(target, dict):
        return
    if value is None and key in target:  # None stands for "remove the field" half of the time
        del target[key]
    else:
        target[key] = value


def _import_in_process(path: Path, capsys) -> tuple[int, str]:
    from llmtrace.cli.main import main

    argv = sys.argv
    sys.argv = ["llmtrace", "import", "--replace", str(path)]
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    finally:
        sys.argv = argv
    return code, capsys.readouterr().err


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(edits=st.lists(_edit, max_size=4), shape=st.sampled_from(["json", "jsonl", "array", "cut", "bytes"]),
       junk=st.binary(max_size=40))
def test_fuzzed_imports_never_raise(llmtrace_home, tmp_path, capsys, edits, shape, junk):
    doc = _doc()
    for edit in edits:
        _apply(doc, copy.deepcopy(edit))
    text = json.dumps(doc, ensure_ascii=True)  # ensure_ascii: lone surrogates become \ud800 escapes
    data = {"json": text, "jsonl": text + "\n" + json.dumps(_doc("0190eeee-0000-7000-8000-000000000005", "e")),
            "array": f"[{text}]", "cut": text[: len(text) // 2]}.get(shape)
    f = tmp_path / "fuzz.json"
    f.write_bytes(junk + text.encode() if data is None else data.encode())
    code, err = _import_in_process(f, capsys)
    assert code in (0, 2), err
    if code:
        assert err.count("\n") == 1 and err.startswith("llmtrace: error: "), err
    else:  # imported: it reads back as a trace
        from llmtrace.store import open_store
        from llmtrace.store.queries import get_spans, get_trace

        db = open_store(llmtrace_home / "traces.db")
        try:
            trace_id = doc["trace"]["id"]
            assert get_trace(db, trace_id).id == trace_id
            get_spans(db, trace_id, payloads=True)
        finally:
            db.close()
    assert "Traceback" not in err


def test_in_process_import_reports_like_the_command(llmtrace_home, tmp_path, capsys):
    """The fuzz's in-process door gives what `llmtrace import` gives: the one line and exit 2."""
    f = tmp_path / "bad.json"
    f.write_text(json.dumps({**_doc(), "spans": "nope"}))
    code, err = _import_in_process(f, capsys)
    assert code == 2 and err == f"llmtrace: error: {f}: damaged trace document: spans must be a list, not 'nope'\n"

