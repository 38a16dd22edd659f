"""Self-contained JSON documents of traces, and loading them into a store (`export` / `import`).

A document holds everything the store knows of a trace: the trace row with its tags, feedback and
totals, and every span with its payloads. Export → import → export gives the same document.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import uuid
from typing import Any, Callable, Iterable

from llmtrace.errors import UserError
from llmtrace.model import Feedback, Span, Totals, Trace

FORMAT = "llmtrace.trace/1"
_SPAN_FIELDS = tuple(f.name for f in dataclasses.fields(Span))


def to_document(trace: Trace, spans: list[Span]) -> dict[str, Any]:
    return {"format": FORMAT, "trace": dataclasses.asdict(trace), "spans": [dataclasses.asdict(s) for s in spans]}


def _span_dict(span: Span) -> dict[str, Any]:
    """dataclasses.asdict(span) without its deep copy (the values are only encoded): same keys, same order."""
    return {name: getattr(span, name) for name in _SPAN_FIELDS}


def write_document(write: Callable[[str], Any], trace: Trace, spans: Iterable[Span], *, indent: int | None = None,
                   sort_keys: bool = False, level: int = 0) -> int:
    """Write `to_document(trace, spans)` span by span, byte for byte as `json.dumps(doc, ensure_ascii=False,
    indent=indent, sort_keys=sort_keys)` writes it (`level`: how deep it sits in an indented array).

    Only one span is held at a time, so `spans` can be a cursor over a 200,000-span trace. Returns how
    many spans were written.
    """
    encode = json.JSONEncoder(ensure_ascii=False, indent=indent, sort_keys=sort_keys).encode
    pad = "\n" + " " * (indent * level) if indent and level else ""

    def out(text: str) -> None:  # encoded JSON has newlines only between tokens: re-indenting is safe
        write(text.replace("\n", pad) if pad else text)

    it = iter(spans)
    first = next(it, None)
    if first is None:
        out(encode(to_document(trace, [])))
        return 0
    # The document with a random string for its spans, split there: what comes before and after them.
    marker = f"llmtrace-spans-{uuid.uuid4().hex}"
    head, _, rest = encode({"format": FORMAT, "trace": dataclasses.asdict(trace), "spans": [marker]}).partition(f'"{marker}"')
    # The indentation of the array's items; each span's own lines are re-indented to sit under it.
    inner = "\n" + head.rpartition("\n")[2] if indent is not None else ""
    separator = "," + inner if indent is not None else ", "

    def item(span: Span) -> str:
        text = encode(_span_dict(span))
        return text.replace("\n", inner) if inner else text

    out(head + item(first))
    n = 1
    for span in it:
        out(separator + item(span))
        n += 1
    out(rest)
    return n


# What each field of a document may hold. "any" is any JSON value; every other kind is checked, and a
# field not listed is refused (a document from a newer llmtrace says so instead of losing data).
_STR, _OSTR, _INT, _OINT, _ONUM = "str", "str|None", "int", "int|None", "number|None"
_TRACE_TYPES = {
    "id": _STR, "name": _STR, "start_us": _INT, "script": _OSTR, "argv": "list[str]", "cwd": _OSTR, "end_us": _OINT,
    "status": _STR, "exit_code": _OINT, "error": _OSTR, "traceback": _OSTR, "pid": _OINT, "version": _OSTR,
    "run_id": _OSTR, "tags": "dict[str]", "totals": "totals", "feedback": "feedback",
}
_SPAN_TYPES = {
    "id": _STR, "trace_id": _STR, "parent_id": _OSTR, "kind": _STR, "name": _STR, "start_us": _INT, "end_us": _OINT,
    "status": _STR, "error_type": _OSTR, "error_message": _OSTR, "inputs": "any", "outputs": "any",
    "tags": "list[str]", "metadata": "dict", "model_requested": _OSTR, "model": _OSTR, "provider": _OSTR,
    "input_tokens": _OINT, "output_tokens": _OINT, "cached_tokens": _OINT, "reasoning_tokens": _OINT,
    "finish_reason": _OSTR, "tool_calls": "list|None", "first_token_us": _OINT, "cost": _ONUM, "streamed": "bool",
    "cache_hit": _OSTR, "cost_saved": _ONUM, "attempts": _OINT, "request": "any", "response": "any",
}
_TOTALS_TYPES = {f.name: ("number" if f.type in (float, "float") else _INT) for f in dataclasses.fields(Totals)}
_FEEDBACK_TYPES = {"score": _INT, "comment": _OSTR, "created_us": _INT}
_TRACE_REQUIRED, _SPAN_REQUIRED = ("id", "name", "start_us"), ("id", "trace_id", "parent_id", "kind", "name", "start_us")
_INT64 = (-(1 << 63), (1 << 63) - 1)  # what an SQLite INTEGER holds
MAX_DEPTH = 200  # nesting of a span's values; LangChain's messages nest a dozen levels


class _Bad(Exception):
    """One thing wrong with a document: the field's place and what is wrong with it."""


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_text(value: str, where: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (a "\ud800" escape): SQLite cannot store it
        raise _Bad(f"{where} is not valid Unicode text") from None


def _check_any(value: Any, where: str) -> None:
    """Any JSON value, walked without recursion: strings valid, numbers finite and in range, depth bounded."""
    todo = [(value, 0)]
    while todo:
        v, depth = todo.pop()
        if depth > MAX_DEPTH:
            raise _Bad(f"{where} is nested more than {MAX_DEPTH} levels deep")
        if isinstance(v, str):
            _check_text(v, where)
        elif isinstance(v, bool) or v is None:
            pass
        elif isinstance(v, int):
            if not _INT64[0] <= v <= _INT64[1]:
                raise _Bad(f"{where} holds an integer too large to store")
        elif isinstance(v, float):
            if v != v or v in (float("inf"), float("-inf")):
                raise _Bad(f"{where} holds a number that is not finite")
        elif isinstance(v, list):
            todo.extend((x, depth + 1) for x in v)
        elif isinstance(v, dict):
            for k, x in v.items():
                _check_text(k, where)
                todo.append((x, depth + 1))
        else:
            raise _Bad(f"{where} holds a {type(v).__name__}")


def _check(value: Any, kind: str, where: str) -> None:
    if kind.endswith("|None"):
        if value is None:
            return
        kind = kind[: -len("|None")]
    if kind == "any":
        return _check_any(value, where)
    if kind == _STR:
        if not isinstance(value, str):
            raise _Bad(f"{where} must be a string, not {_show(value)}")
        return _check_text(value, where)
    if kind == _INT:
        if not isinstance(value, int) or isinstance(value, bool):
            raise _Bad(f"{where} must be an integer, not {_show(value)}")
        if not _INT64[0] <= value <= _INT64[1]:
            raise _Bad(f"{where} is out of range ({_show(value)})")
        return None
    if kind == "number":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise _Bad(f"{where} must be a number, not {_show(value)}")
        return _check_any(value, where)
    if kind == "bool":
        if not isinstance(value, bool) and value not in (0, 1):
            raise _Bad(f"{where} must be true or false, not {_show(value)}")
        return None
    if kind in ("list[str]", "list"):
        if not isinstance(value, list):
            raise _Bad(f"{where} must be a list, not {_show(value)}")
        for i, item in enumerate(value):
            _check(item, _STR if kind == "list[str]" else "any", f"{where}[{i}]")
        return None
    if kind in ("dict", "dict[str]"):
        if not isinstance(value, dict):
            raise _Bad(f"{where} must be an object, not {_show(value)}")
        for k, item in value.items():
            _check_text(k, where)
            _check(item, _STR if kind == "dict[str]" else "any", f"{where}.{k}")
        return None
    if kind == "totals":
        return _check_fields(value, _TOTALS_TYPES, (), where)
    if kind == "feedback":
        if not isinstance(value, list):
            raise _Bad(f"{where} must be a list, not {_show(value)}")
        for i, item in enumerate(value):
            _check_fields(item, _FEEDBACK_TYPES, tuple(_FEEDBACK_TYPES), f"{where}[{i}]")
        return None
    raise AssertionError(kind)


def _check_fields(obj: Any, types: dict[str, str], required: tuple[str, ...], where: str) -> None:
    if not isinstance(obj, dict):
        raise _Bad(f"{where} must be an object, not {_show(obj)}")
    for name in required:
        if name not in obj:
            raise _Bad(f"{where} has no {name!r}")
    for name, value in obj.items():
        kind = types.get(name)
        if kind is None:
            raise _Bad(f"{where} has an unknown field {_show(name)}")
        _check(value, kind, f"{where}.{name}")


def _check_tree(spans: list[dict[str, Any]], trace_id: str) -> None:
    """Span ids unique, every span of this trace, and no span its own ancestor (a parent may be missing:
    a killed run never wrote the spans that were still open)."""
    parents: dict[str, str | None] = {}
    for i, s in enumerate(spans):
        if s["trace_id"] != trace_id:
            raise _Bad(f"span {i} belongs to trace {_show(s['trace_id'])}, not to this one")
        if not s["id"]:
            raise _Bad(f"span {i} has an empty id")
        if s["id"] in parents:
            raise _Bad(f"span id {_show(s['id'])} is in the document more than once")
        parents[s["id"]] = s["parent_id"]
    done: set[str] = set()
    for start in parents:
        path: set[str] = set()
        at: str | None = start
        while at is not None and at in parents and at not in done:
            if at in path:
                raise _Bad(f"span {_show(at)} is its own ancestor (a parent cycle)")
            path.add(at)
            at = parents[at]
        done |= path


def validate(doc: Any) -> None:
    """Raise UserError (one line) unless `doc` is a trace document whose every field can be stored as is."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise UserError(f"not an llmtrace trace document (expected format {FORMAT!r})")
    try:
        unknown = sorted(set(doc) - {"format", "trace", "spans"})
        if unknown:
            raise _Bad(f"the document has an unknown field {_show(unknown[0])}")
        if "trace" not in doc or "spans" not in doc:
            raise _Bad(f"the document has no {'trace' if 'trace' not in doc else 'spans'!r}")
        _check_fields(doc["trace"], _TRACE_TYPES, _TRACE_REQUIRED, "trace")
        if not doc["trace"]["id"]:
            raise _Bad("trace.id is empty")
        spans = doc["spans"]
        if not isinstance(spans, list):
            raise _Bad(f"spans must be a list, not {_show(spans)}")
        for i, s in enumerate(spans):
            _check_fields(s, _SPAN_TYPES, _SPAN_REQUIRED, f"span {i}")
        _check_tree(spans, doc["trace"]["id"])
    except _Bad as e:
        raise UserError(f"damaged trace document: {e}") from None


def from_document(doc: Any) -> tuple[Trace, list[Span]]:
    validate(doc)
    t = dict(doc["trace"])
    t["totals"] = Totals(**t.get("totals", {}))
    t["feedback"] = [Feedback(**f) for f in t.get("feedback", [])]
    trace = Trace(**t)
    spans = [Span(**{**s, "streamed": bool(s.get("streamed", False))}) for s in doc["spans"]]
    return trace, spans


def from_documents(docs: list[Any], file: str) -> list[tuple[Trace, list[Span]]]:
    """Every document of a file, each validated (a UserError names the first bad one), no trace or span twice."""
    items = []
    for n, doc in enumerate(docs, start=1):
        try:
            items.append(from_document(doc))
        except UserError as e:
            raise UserError(f"{file}: document {n} of {len(docs)}: {e}" if len(docs) > 1 else f"{file}: {e}") from None
    traces: set[str] = set()
    spans: set[str] = set()
    for trace, trace_spans in items:
        if trace.id in traces:
            raise UserError(f"trace {trace.id} is in {file} more than once")
        traces.add(trace.id)
        for span in trace_spans:
            if span.id in spans:
                raise UserError(f"span {span.id} is in {file} under two traces")
            spans.add(span.id)
    return items


def existing_ids(db: sqlite3.Connection, ids: list[str]) -> set[str]:
    """Which of these trace ids the store already holds."""
    from llmtrace.store.db import in_lists

    found: set[str] = set()
    for chunk, marks in in_lists(ids):
        found.update(r[0] for r in db.execute(f"SELECT id FROM traces WHERE id IN ({marks})", chunk))
    return found


def spans_of_other_traces(db: sqlite3.Connection, items: list[tuple[Trace, list[Span]]]) -> tuple[str, str, str] | None:
    """A span id of these traces that the store already holds under another trace: (span, its trace, the
    importing trace). Writing it would take the span away from that trace."""
    owner = {s.id: t.id for t, spans in items for s in spans}
    from llmtrace.store.db import in_lists

    for chunk, marks in in_lists(list(owner)):
        for span_id, trace_id in db.execute(f"SELECT id, trace_id FROM spans WHERE id IN ({marks})", chunk):
            if trace_id != owner[span_id]:
                return span_id, trace_id, owner[span_id]
    return None


def import_trace(db: sqlite3.Connection, trace: Trace, spans: list[Span], redactor: Any, *, replace: bool = False) -> None:
    """Write a trace exactly as documented (status, totals, tags, feedback, spans, payloads)."""
    from llmtrace.store.db import transaction
    from llmtrace.store.edit import delete_traces
    from llmtrace.store.schema import TOTAL_COLUMNS
    from llmtrace.store.writer import StoreWriter

    if db.execute("SELECT 1 FROM traces WHERE id = ?", (trace.id,)).fetchone():
        if not replace:
            raise UserError(f"trace {trace.id} is already in this store (use --replace to overwrite it)")
        delete_traces(db, [trace.id])
    writer = StoreWriter(db, redactor)
    writer.start_trace(trace)
    writer.write_spans(spans)
    totals = dataclasses.asdict(trace.totals)
    with transaction(db):
        db.execute(
            f"""UPDATE traces SET end_us = ?, status = ?, exit_code = ?, error = ?, traceback = ?,
                 {", ".join(f"{c} = ?" for c in TOTAL_COLUMNS)} WHERE id = ?""",
            (trace.end_us, trace.status, trace.exit_code, trace.error, trace.traceback, *[totals[c] for c in TOTAL_COLUMNS], trace.id),
        )
        db.executemany(
            "INSERT INTO feedback (trace_id, score, comment, created_us) VALUES (?, ?, ?, ?)",
            [(trace.id, f.score, f.comment, f.created_us) for f in trace.feedback],
        )
