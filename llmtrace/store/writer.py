"""Writes traces and finished spans to SQLite, one short transaction per span.

This is an exporter: the capture side hands it finished Span objects and never knows where they go.
Every text column passes through the redactor here, the last stop before disk.
"""

from __future__ import annotations

import contextlib
import json
import marshal
import operator
import os
import sqlite3
import threading
from typing import Any

from llmtrace.errors import warn_once
from llmtrace.model import Span, Totals, Trace
from llmtrace.redact import Redactor, has_key_fragment
from llmtrace.store.db import in_lists, insert_rows, transaction
from llmtrace.store.schema import JSON_SPAN_COLUMNS, SPAN_COLUMNS, TOTAL_COLUMNS

DEFAULT_MAX_FIELD_BYTES = 1 << 20

_span_values = operator.attrgetter(*SPAN_COLUMNS)
_JSON_INDEXES = [i for i, c in enumerate(SPAN_COLUMNS) if c in JSON_SPAN_COLUMNS]
_PLAIN_INDEXES = [i for i, c in enumerate(SPAN_COLUMNS) if c not in JSON_SPAN_COLUMNS]
_ERROR_INDEX = SPAN_COLUMNS.index("error_message")
_STREAMED_INDEX = SPAN_COLUMNS.index("streamed")
_ID_INDEX = SPAN_COLUMNS.index("id")
_SPAN_INSERT = f"INSERT OR REPLACE INTO spans ({', '.join(SPAN_COLUMNS)}) VALUES "
_PAYLOAD_INSERT = "INSERT OR REPLACE INTO payloads (span_id, request, response) VALUES "


# What a bad value (not a full disk, not a locked store) makes sqlite3 raise on insert.
_BAD_VALUE = (UnicodeError, OverflowError, TypeError, ValueError, sqlite3.InterfaceError, sqlite3.ProgrammingError)


def _row_lost(span_id: Any, error: BaseException) -> None:
    warn_once("row", f"span {span_id} could not be stored ({type(error).__name__}: {error}); the others are")


@contextlib.contextmanager
def savepoint(db: sqlite3.Connection) -> Any:
    db.execute("SAVEPOINT llmtrace_row")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK TO llmtrace_row")
        db.execute("RELEASE llmtrace_row")
        raise
    db.execute("RELEASE llmtrace_row")


def max_field_bytes() -> int:
    try:
        return max(1024, int(os.environ.get("LLMTRACE_MAX_PAYLOAD_BYTES", DEFAULT_MAX_FIELD_BYTES)))
    except ValueError:
        return DEFAULT_MAX_FIELD_BYTES


def json_default(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return repr(value)


# Built once: json.dumps with keyword arguments builds a new encoder on every call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, default=json_default)
encode_json = _ENCODER.encode


def plain_text(value: Any) -> Any:
    """`value` as SQLite can take it: a str holding a lone surrogate (from bytes that were not UTF-8, a
    model name a server made up) has each replaced by U+FFFD; anything else as it is."""
    if value.__class__ is not str or value.isascii():
        return value
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


class JsonEncoder:
    def __init__(self, redactor: Redactor, cap: int | None = None):
        self.redactor = redactor
        self.cap = cap if cap is not None else max_field_bytes()

    def __call__(self, value: Any, clean: bool = False) -> str | None:
        """`value` as JSON text, redacted (unless `clean`: known to hold nothing to redact) and capped."""
        if value is None:
            return None
        try:
            text = _ENCODER.encode(value)
            if not clean and has_key_fragment(text):  # only then walk the value for credential-named fields
                text = _ENCODER.encode(self.redactor.obj(value))
        except (ValueError, TypeError, RecursionError) as e:  # circular or pathological structures
            text = json.dumps({"llmtrace_unserialisable": f"{type(e).__name__}: {e}", "repr": repr(value)[:2000]})
        if not clean:
            text = self.redactor.text(text)
        if len(text) > self.cap:
            text = json.dumps(
                {"llmtrace_truncated": True, "bytes": len(text.encode("utf-8", "replace")), "head": text[: self.cap]},
                ensure_ascii=False,
            )
        if text.isascii():
            return text
        # Lone surrogates from odd bytes would make sqlite3 raise on encode.
        return text.encode("utf-8", "replace").decode("utf-8")


class RowEncoder:
    """A span as its `spans` row and `payloads` row: encoded and redacted, ready for SQLite or a spool."""

    def __init__(self, redactor: Redactor):
        self.redactor = redactor
        self.encode = JsonEncoder(redactor)

    def rows(self, span: Span) -> tuple[list[Any], list[Any] | None]:
        """The span's `spans` row and its `payloads` row (None when it has no payload), encoded and redacted."""
        return self._rows(list(_span_values(span)), span.request, span.response)

    def snapshot(self, span: Span) -> bytes | None:
        """The span's values as they are now, in marshal's format, when nothing in them needs redacting;
        None otherwise (or when a value is not plain data). Encoding the snapshot (`snapshot_rows`) is
        most of the cost of recording a span, and may then wait for another thread: the snapshot is
        already safe to keep on disk, and costs a few microseconds."""
        values, request, response = _span_values(span), span.request, span.response
        try:
            blob = marshal.dumps((values, request, response))
        except ValueError:  # an object marshal cannot write: the JSON encoder's fallbacks deal with it
            return None
        if self.redactor.may_change(blob, (values, request, response)):
            return None
        return blob

    def snapshot_rows(self, blob: bytes) -> tuple[list[Any], list[Any] | None]:
        """The rows of a `snapshot`: found clean when it was taken, so encoded without redacting again."""
        values, request, response = marshal.loads(blob)
        return self._rows(list(values), request, response, clean=True)

    def _rows(self, values: list[Any], request: Any, response: Any,
              clean: bool = False) -> tuple[list[Any], list[Any] | None]:
        enc = self.encode
        for i in _PLAIN_INDEXES:  # the JSON columns are made text (and made safe) below
            v = values[i]
            if v.__class__ is str and not v.isascii():
                values[i] = plain_text(v)
        for i in _JSON_INDEXES:
            v = values[i]
            # None and empty containers are stored as NULL; 0, "" and False are values (a tool may return 0).
            values[i] = None if v is None or v == [] or v == {} else enc(v, clean)
        if values[_ERROR_INDEX] is not None and not clean:
            values[_ERROR_INDEX] = self.redactor.text(values[_ERROR_INDEX])
        values[_STREAMED_INDEX] = int(values[_STREAMED_INDEX])
        if request is None and response is None:
            return values, None
        return values, [values[_ID_INDEX], enc(request, clean), enc(response, clean)]


class StoreWriter:
    def __init__(self, db: sqlite3.Connection, redactor: Redactor):
        self.db = db
        self.db_path = db.execute("PRAGMA database_list").fetchone()[2]
        self.redactor = redactor
        self.encoder = encoder = RowEncoder(redactor)
        self.encode, self.rows = encoder.encode, encoder.rows
        self._lock = threading.Lock()

    def _text(self, s: str | None) -> str | None:
        return None if s is None else plain_text(self.redactor.text(s))

    _TRACE_FIELDS = ("id", "name", "script", "argv", "cwd", "start_us", "status", "pid", "version", "run_id")

    def trace_fields(self, trace: Trace) -> dict[str, Any]:
        """A trace's row as it is first written, its text redacted (for `begin_traces`, by way of a spool)."""
        return {"id": trace.id, "name": self._text(trace.name), "script": plain_text(trace.script),
                "argv": self.encode(trace.argv), "cwd": plain_text(trace.cwd), "start_us": trace.start_us,
                "status": trace.status, "pid": trace.pid, "version": trace.version, "run_id": trace.run_id,
                "tags": {plain_text(k): self._text(v) for k, v in trace.tags.items()}}

    def begin_traces(self, rows: list[dict[str, Any]]) -> None:
        """Write traces' first rows made by `trace_fields` (already redacted); one already there is kept."""
        with self._lock, transaction(self.db):
            self.db.executemany(
                f"INSERT OR IGNORE INTO traces ({', '.join(self._TRACE_FIELDS)}) VALUES ({', '.join('?' * len(self._TRACE_FIELDS))})",
                [[r.get(f) for f in self._TRACE_FIELDS] for r in rows])
            self.db.executemany("INSERT OR IGNORE INTO trace_tags (trace_id, key, value) VALUES (?, ?, ?)",
                                [(r["id"], str(k), v if v is None else str(v)) for r in rows
                                 for k, v in (r.get("tags") or {}).items()])

    def start_trace(self, trace: Trace) -> None:
        with self._lock, transaction(self.db):
            self.db.execute(
                """INSERT INTO traces (id, name, script, argv, cwd, start_us, status, pid, version, run_id)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (trace.id, self._text(trace.name), plain_text(trace.script), self.encode(trace.argv), plain_text(trace.cwd), trace.start_us,
                 trace.status, trace.pid, trace.version, trace.run_id),
            )
            self.db.executemany(
                "INSERT OR REPLACE INTO trace_tags (trace_id, key, value) VALUES (?, ?, ?)",
                [(trace.id, plain_text(k), self._text(v)) for k, v in trace.tags.items()],
            )

    def write_ended_traces(self, traces: list[Trace]) -> None:
        """Traces that ended with no span (tests without LLM calls), many in one transaction."""
        with self._lock, transaction(self.db):
            self.db.executemany(
                """INSERT OR REPLACE INTO traces (id, name, script, argv, cwd, start_us, end_us, status, exit_code, error,
                   pid, version, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [(t.id, self._text(t.name), plain_text(t.script), self.encode(t.argv), plain_text(t.cwd), t.start_us,
                  t.end_us, t.status, t.exit_code, self._text(t.error), t.pid, t.version, t.run_id) for t in traces],
            )
            self.db.executemany(
                "INSERT OR REPLACE INTO trace_tags (trace_id, key, value) VALUES (?, ?, ?)",
                [(t.id, plain_text(k), self._text(v)) for t in traces for k, v in t.tags.items()],
            )

    def write_span(self, span: Span) -> None:
        self.write_spans([span])

    def write_spans(self, spans: list[Span]) -> None:
        """Write finished spans in one transaction (one commit however many there are)."""
        self.write_rows([self.rows(span) for span in spans])

    def write_rows(self, encoded: list[tuple[list[Any], list[Any] | None]]) -> None:
        """Store encoded rows in one transaction. A row SQLite cannot take (a value of a type it does not
        know, an integer past 64 bits) costs that row alone, said once: the batch is stored without it."""
        rows = [values for values, _ in encoded]
        payloads = [payload for _, payload in encoded if payload is not None]
        try:
            with self._lock, transaction(self.db):
                insert_rows(self.db, _SPAN_INSERT, rows)
                if payloads:
                    insert_rows(self.db, _PAYLOAD_INSERT, payloads)
            return
        except _BAD_VALUE:
            pass
        with self._lock, transaction(self.db):
            for values, payload in encoded:
                try:
                    with savepoint(self.db):
                        insert_rows(self.db, _SPAN_INSERT, [values])
                        if payload is not None:
                            insert_rows(self.db, _PAYLOAD_INSERT, [payload])
                except _BAD_VALUE as e:
                    _row_lost(values[_ID_INDEX], e)

    def finish_trace(self, trace: Trace) -> None:
        """Mark the trace ended and store its totals, computed from the spans on disk (and set on `trace`)."""
        self.finish_traces([trace])

    def finish_traces(self, traces: list[Trace]) -> None:
        """`finish_trace` of several traces in one transaction (the requests a server answered in 200 ms):
        one commit, not one a trace. Tags the traces have gained since they began (the app's labels,
        `core/labels.py`) are added; a tag already stored keeps its value."""
        with self._lock, transaction(self.db):
            self.db.executemany(
                "UPDATE traces SET end_us = ?, status = ?, exit_code = ?, error = ?, traceback = ? WHERE id = ?",
                [(t.end_us, t.status, t.exit_code, self._text(t.error), self._text(t.traceback), t.id) for t in traces],
            )
            self.db.executemany("INSERT OR IGNORE INTO trace_tags (trace_id, key, value) VALUES (?, ?, ?)",
                                [(t.id, plain_text(k), self._text(v)) for t in traces for k, v in t.tags.items()])
            ids = [t.id for t in traces]
            store_totals(self.db, ids)
            rows = [row for chunk, marks in in_lists(ids) for row in self.db.execute(
                f"SELECT id, {', '.join(TOTAL_COLUMNS)} FROM traces WHERE id IN ({marks})", chunk)]
        totals = {row[0]: Totals(*row[1:]) for row in rows}
        for t in traces:
            if t.id in totals:
                t.totals = totals[t.id]

    def settle_split_run(self, run_id: str) -> None:
        """`run --split`, at the run's end: spans that landed in the run's own record (a child process's,
        or one whose parent had ended) join the trace of their nearest ancestor that has one; then every
        trace of the run gets its totals summed again."""
        with self._lock, transaction(self.db):
            self.db.execute(
                """WITH RECURSIVE moved(id, tid) AS (
                       SELECT s.id, p.trace_id FROM spans s JOIN spans p ON p.id = s.parent_id
                        WHERE s.trace_id = ?1 AND p.trace_id != ?1
                       UNION ALL
                       SELECT s.id, m.tid FROM spans s JOIN moved m ON s.parent_id = m.id WHERE s.trace_id = ?1)
                   UPDATE spans SET trace_id = moved.tid FROM moved WHERE spans.id = moved.id""",
                (run_id,),
            )
            store_totals(self.db, [row[0] for row in self.db.execute("SELECT id FROM traces WHERE run_id = ?", (run_id,))])

    def close(self) -> None:
        with self._lock:
            self.db.close()


def store_totals(db: sqlite3.Connection, ids: list[str], *, ended_only: bool = False) -> None:
    """Set the totals of the traces `ids` from their spans on disk; with `ended_only`, a running trace's
    are left to its run. The ids go as a list of values: with a subquery (`IN (SELECT …)`), SQLite sums
    the totals view over every span in the store (~20 ms a 6,000 spans)."""
    for chunk, marks in in_lists(ids):
        db.execute(
            f"""UPDATE traces SET {", ".join(f"{c} = t.{c}" for c in TOTAL_COLUMNS)}
               FROM (SELECT * FROM span_totals WHERE trace_id IN ({marks})) AS t
               WHERE traces.id = t.trace_id{" AND traces.status != 'running'" if ended_only else ""}""",
            chunk,
        )
