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


def from_document(doc: Any) -> tuple[Trace, list[Span]]:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise UserError(f"not an llmtrace trace document (expected format {FORMAT!r})")
    try:
        t = dict(doc["trace"])
        t["totals"] = Totals(**t.get("totals", {}))
        t["feedback"] = [Feedback(**f) for f in t.get("feedback", [])]
        trace = Trace(**t)
        spans = [Span(**s) for s in doc["spans"]]
    except (KeyError, TypeError) as e:
        raise UserError(f"damaged trace document: {e}") from None
    return trace, spans


def existing_ids(db: sqlite3.Connection, ids: list[str]) -> set[str]:
    """Which of these trace ids the store already holds."""
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        found.update(r[0] for r in db.execute(f"SELECT id FROM traces WHERE id IN ({','.join('?' * len(chunk))})", chunk))
    return found


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
