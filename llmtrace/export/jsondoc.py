"""Self-contained JSON documents of traces, and loading them into a store (`export` / `import`).

A document holds everything the store knows of a trace: the trace row with its tags, feedback and
totals, and every span with its payloads. Export → import → export gives the same document.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from typing import Any

from llmtrace.errors import UserError
from llmtrace.model import Feedback, Span, Totals, Trace

FORMAT = "llmtrace.trace/1"


def to_document(trace: Trace, spans: list[Span]) -> dict[str, Any]:
    return {"format": FORMAT, "trace": dataclasses.asdict(trace), "spans": [dataclasses.asdict(s) for s in spans]}


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
            f"""UPDATE traces SET end_us = ?, status = ?, exit_code = ?, error = ?,
                 {", ".join(f"{c} = ?" for c in TOTAL_COLUMNS)} WHERE id = ?""",
            (trace.end_us, trace.status, trace.exit_code, trace.error, *[totals[c] for c in TOTAL_COLUMNS], trace.id),
        )
        db.executemany(
            "INSERT INTO feedback (trace_id, score, comment, created_us) VALUES (?, ?, ?, ?)",
            [(trace.id, f.score, f.comment, f.created_us) for f in trace.feedback],
        )
