"""Read side of the store: plain model objects out of SQL, with the filtering done in SQL."""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from llmtrace.errors import UserError
from llmtrace.model import Feedback, Span, Status, Totals, Trace
from llmtrace.store.schema import JSON_SPAN_COLUMNS, SPAN_COLUMNS, TOTAL_COLUMNS

_TOTAL_COLS = ", ".join(TOTAL_COLUMNS)
_TRACE_COLS = "id, name, script, argv, cwd, start_us, end_us, status, exit_code, error, pid, version, " + _TOTAL_COLS


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _trace_from_row(db: sqlite3.Connection, row: tuple) -> Trace:
    (tid, name, script, argv, cwd, start, end, status, exit_code, error, pid, version, *totals) = row
    trace = Trace(
        id=tid, name=name, script=script, argv=_loads(argv) or [], cwd=cwd, start_us=start, end_us=end,
        status=status, exit_code=exit_code, error=error, pid=pid, version=version,
        totals=Totals(*totals),
    )
    if trace.status == Status.RUNNING.value:
        # Totals are written when a run finishes; a running (or dead) one is summed live.
        live = db.execute(f"SELECT {_TOTAL_COLS} FROM span_totals WHERE trace_id = ?", (tid,)).fetchone()
        if live:
            trace.totals = Totals(*[v or 0 for v in live])
        if not pid_alive(pid):
            trace.status = Status.KILLED.value
    return trace


def _attach_tags(db: sqlite3.Connection, traces: list[Trace]) -> None:
    """Tags and feedback for a page of traces, two queries in all."""
    if not traces:
        return
    by_id = {t.id: t for t in traces}
    marks = ",".join("?" * len(by_id))
    for tid, key, value in db.execute(
        f"SELECT trace_id, key, value FROM trace_tags WHERE trace_id IN ({marks}) ORDER BY key", list(by_id)
    ):
        by_id[tid].tags[key] = value
    for tid, score, comment, created in db.execute(
        f"SELECT trace_id, score, comment, created_us FROM feedback WHERE trace_id IN ({marks}) ORDER BY created_us, id",
        list(by_id),
    ):
        by_id[tid].feedback.append(Feedback(score, comment, created))


@dataclass
class TraceFilter:
    since_us: int | None = None
    until_us: int | None = None
    status: str | None = None
    name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    min_score: float | None = None
    max_score: float | None = None
    limit: int | None = 20


def list_traces(db: sqlite3.Connection, f: TraceFilter | None = None) -> list[Trace]:
    f = f or TraceFilter()
    where, args = [], []
    if f.since_us is not None:
        where.append("start_us >= ?")
        args.append(f.since_us)
    if f.until_us is not None:
        where.append("start_us < ?")
        args.append(f.until_us)
    if f.name:
        where.append("name = ?")
        args.append(f.name)
    if f.status and f.status != Status.KILLED.value:
        where.append("status = ?")
        args.append(f.status)
    elif f.status == Status.KILLED.value:
        where.append("status = 'running'")
    for key, value in f.tags.items():
        where.append("id IN (SELECT trace_id FROM trace_tags WHERE key = ? AND value = ?)")
        args += [key, value]
    for bound, op in ((f.min_score, ">="), (f.max_score, "<=")):
        if bound is not None:
            where.append(f"id IN (SELECT trace_id FROM feedback GROUP BY trace_id HAVING avg(score) {op} ?)")
            args.append(bound)
    sql = f"SELECT {_TRACE_COLS} FROM traces"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY start_us DESC"
    if f.limit:
        sql += " LIMIT ?"
        args.append(f.limit)
    traces = [_trace_from_row(db, r) for r in db.execute(sql, args)]
    if f.status in (Status.KILLED.value, Status.RUNNING.value):
        traces = [t for t in traces if t.status == f.status]
    _attach_tags(db, traces)
    return traces


def resolve_trace_id(db: sqlite3.Connection, ref: str) -> str:
    """Full id, unique prefix (dashes optional) or `last` / `last~N` → full trace id."""
    ref = ref.strip().lower()
    if ref == "last" or ref.startswith("last~"):
        n = 0
        if ref != "last":
            try:
                n = int(ref[5:])
            except ValueError:
                raise UserError(f"bad trace reference {ref!r}: use last, last~1, last~2, …") from None
        row = db.execute("SELECT id FROM traces ORDER BY start_us DESC LIMIT 1 OFFSET ?", (max(n, 0),)).fetchone()
        if row is None:
            raise UserError("no traces recorded yet" if n == 0 else f"there is no trace {ref}")
        return row[0]
    if not ref or any(c not in "0123456789abcdef-" for c in ref):
        raise UserError(f"bad trace id {ref!r}: expected hex digits (a prefix of the id) or 'last'")
    prefix = _dashed(ref.replace("-", ""))
    rows = db.execute(
        "SELECT id FROM traces WHERE id >= ? AND id < ? ORDER BY id LIMIT 6", (prefix, prefix + "g")
    ).fetchall()
    if not rows:
        raise UserError(f"no trace matches {ref!r}")
    if len(rows) > 1:
        names = ", ".join(r[0][:13] for r in rows[:5])
        raise UserError(f"trace id {ref!r} is ambiguous: {names}{', …' if len(rows) > 5 else ''}")
    return rows[0][0]


def _dashed(compact: str) -> str:
    """A hex prefix laid out like a UUID string (8-4-4-4-12), so the id index can serve it."""
    out, pos = [], 0
    for width in (8, 4, 4, 4, 12):
        part = compact[pos : pos + width]
        if not part:
            break
        out.append(part)
        pos += width
    return "-".join(out)


def get_trace(db: sqlite3.Connection, trace_id: str) -> Trace:
    row = db.execute(f"SELECT {_TRACE_COLS} FROM traces WHERE id = ?", (trace_id,)).fetchone()
    if row is None:
        raise UserError(f"no trace {trace_id}")
    trace = _trace_from_row(db, row)
    _attach_tags(db, [trace])
    return trace


_SPAN_COLS = ", ".join(SPAN_COLUMNS)


def get_spans(db: sqlite3.Connection, trace_id: str, *, payloads: bool = False) -> list[Span]:
    spans = []
    for row in db.execute(f"SELECT {_SPAN_COLS} FROM spans WHERE trace_id = ? ORDER BY start_us, id", (trace_id,)):
        fields = dict(zip(SPAN_COLUMNS, row))
        for col in JSON_SPAN_COLUMNS:
            fields[col] = _loads(fields[col])
        fields["tags"] = fields["tags"] or []
        fields["metadata"] = fields["metadata"] or {}
        fields["streamed"] = bool(fields["streamed"])
        spans.append(Span(**fields))
    if payloads and spans:
        by_id = {s.id: s for s in spans}
        for sid, req, resp in db.execute(
            "SELECT p.span_id, p.request, p.response FROM payloads p JOIN spans s ON s.id = p.span_id WHERE s.trace_id = ?",
            (trace_id,),
        ):
            by_id[sid].request, by_id[sid].response = _loads(req), _loads(resp)
    return spans


GROUPINGS = ("model", "day", "trace", "name", "tag:KEY")


@dataclass
class CostRow:
    key: str
    label: str
    calls: int
    input_tokens: int
    output_tokens: int
    cost: float
    cached_calls: int
    saved: float
    unpriced_calls: int


def cost_report(db: sqlite3.Connection, since_us: int | None, until_us: int | None, by: str = "model") -> list[CostRow]:
    """LLM calls grouped by model, local day, trace, trace name or a tag's value, costliest first."""
    args: list[Any] = []
    join = ""
    order = "cost DESC, grp"
    if by == "model":
        key, label = "COALESCE(s.model, s.model_requested, '(unknown)')", "''"
    elif by == "day":
        key, label, order = "date(s.start_us / 1000000, 'unixepoch', 'localtime')", "''", "grp"
    elif by == "trace":
        key, label = "s.trace_id", "COALESCE(t.name, '')"
        join = "LEFT JOIN traces t ON t.id = s.trace_id"
    elif by == "name":
        key, label = "COALESCE(t.name, '(deleted)')", "''"
        join = "LEFT JOIN traces t ON t.id = s.trace_id"
    elif by.startswith("tag:") and len(by) > 4:
        key, label = "COALESCE(g.value, '(no tag)')", "''"
        join = "LEFT JOIN trace_tags g ON g.trace_id = s.trace_id AND g.key = ?"
        args.append(by[4:])
    else:
        raise UserError(f"bad --by {by!r}: use one of {', '.join(GROUPINGS)}")
    where = ["s.kind = 'llm'"]
    if since_us is not None:
        where.append("s.start_us >= ?")
        args.append(since_us)
    if until_us is not None:
        where.append("s.start_us < ?")
        args.append(until_us)
    sql = f"""SELECT {key} AS grp, MAX({label}) AS label, count(*), COALESCE(SUM(s.input_tokens), 0),
                     COALESCE(SUM(s.output_tokens), 0), COALESCE(SUM(s.cost), 0) AS cost,
                     SUM(s.cache_hit IS NOT NULL), COALESCE(SUM(s.cost_saved), 0),
                     SUM(s.cost IS NULL AND s.status != 'error' AND s.cache_hit IS NULL)
              FROM spans s {join}
              WHERE {" AND ".join(where)}
              GROUP BY grp ORDER BY {order}"""
    return [CostRow(*row) for row in db.execute(sql, args)]
