"""Read side of the store: plain model objects out of SQL, with the filtering done in SQL."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any, Iterator

from llmtrace.errors import UserError
from llmtrace.model import Feedback, Span, Status, Totals, Trace
from llmtrace.store.db import in_lists
from llmtrace.store.procs import pid_alive
from llmtrace.store.schema import JSON_SPAN_COLUMNS, SPAN_COLUMNS, TOTAL_COLUMNS

_TOTAL_COLS = ", ".join(TOTAL_COLUMNS)
_TRACE_COLS = "id, name, script, argv, cwd, start_us, end_us, status, exit_code, error, pid, version, traceback, run_id, " + _TOTAL_COLS


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _trace_from_row(db: sqlite3.Connection, row: tuple) -> Trace:
    (tid, name, script, argv, cwd, start, end, status, exit_code, error, pid, version, traceback, run_id, *totals) = row
    trace = Trace(
        id=tid, name=name, script=script, argv=_loads(argv) or [], cwd=cwd, start_us=start, end_us=end,
        status=status, exit_code=exit_code, error=error, traceback=traceback, pid=pid, version=version,
        run_id=run_id, totals=Totals(*totals),
    )
    if trace.status == Status.RUNNING.value:
        # Totals are written when a run finishes; a running (or dead) one is summed live.
        live = db.execute(f"SELECT {_TOTAL_COLS} FROM span_totals WHERE trace_id = ?", (tid,)).fetchone()
        if live:
            trace.totals = Totals(*[v or 0 for v in live])
        if not pid_alive(pid) and not (run_id in (None, tid) and _child_alive(db, tid)):
            trace.status = Status.KILLED.value
    return trace


def _child_alive(db: sqlite3.Connection, run_id: str) -> bool:
    """Whether a child process of the run is still recording (its spool, `<run>.<pid>.spool`, names
    it): a run whose first process is gone is running while any of its processes lives."""
    import os
    from pathlib import Path

    try:
        folder = Path(db.execute("PRAGMA database_list").fetchone()[2]).parent / "spool"
        names = os.listdir(folder)
    except (OSError, TypeError, sqlite3.Error):
        return False
    for name in names:
        if name.startswith(run_id + "."):
            pid = name[len(run_id) + 1:].split(".")[0]
            if pid.isdigit() and pid_alive(int(pid)):
                return True
    return False


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
    name: str | None = None  # exact, or a glob (* ? [abc]) when it holds one of those
    error: str | None = None  # the trace's error contains this (case-insensitive)
    tags: dict[str, str] = field(default_factory=dict)
    min_score: float | None = None
    max_score: float | None = None
    grep: str | None = None  # a span of the trace holds this text (words, the last one a prefix)
    model: str | None = None  # an LLM call of the trace used this model (exact or glob; requested or answered)
    min_cost: float | None = None
    min_duration_us: int | None = None
    run: str | None = None  # `run --split`: this run's traces and its own record (else the record only when it has news)
    limit: int | None = 20


def list_traces(db: sqlite3.Connection, f: TraceFilter | None = None) -> list[Trace]:
    f = f or TraceFilter()
    where, args = [], []
    if f.run is not None:
        where.append("run_id = ?")
        args.append(f.run)
    else:  # a split run's own record is news only when it failed, or holds calls of no invocation
        where.append(_QUIET_RUN_RECORD)
    if f.since_us is not None:
        where.append("start_us >= ?")
        args.append(f.since_us)
    if f.until_us is not None:
        where.append("start_us < ?")
        args.append(f.until_us)
    if f.name and _match_op(f.name) == "GLOB":
        where.append("name GLOB ?")
        args.append(f.name)
    elif f.name:  # exact, or a split trace of that runnable: 'answer' finds 'answer: n=7'
        where.append("(name = ? OR substr(name, 1, ?) = ?)")
        args += [f.name, len(f.name) + 2, f.name + ": "]
    if f.error is not None:
        where.append("error LIKE ? ESCAPE '\\'")
        args.append("%" + like_escape(f.error) + "%")
    if f.status and f.status != Status.KILLED.value:
        where.append("status = ?")
        args.append(f.status)
    elif f.status == Status.KILLED.value:
        where.append("status = 'running'")
    for key, value in f.tags.items():
        where.append("id IN (SELECT trace_id FROM trace_tags WHERE key = ? AND value = ?)")
        args += [key, value]
    if f.grep is not None:
        query = match_query(f.grep)
        _searchable(db)
        hits = db.execute("SELECT count(*) FROM span_text WHERE span_text MATCH ?", (query,)).fetchone()[0]
        if hits <= _FEW_HITS:  # a rare word: its few spans name their traces (2 ms at 1M spans)
            where.append("id IN (SELECT s.trace_id FROM span_text JOIN spans s ON s.rowid = span_text.rowid "
                         "WHERE span_text MATCH ?)")
        else:  # a common one: walk the traces newest first until enough hold a matching span (0.1 s, not 1.1 s)
            where.append("EXISTS (SELECT 1 FROM spans s WHERE s.trace_id = traces.id AND s.rowid IN "
                         "(SELECT rowid FROM span_text WHERE span_text MATCH ?))")
        args.append(query)
    if f.model:
        op = _match_op(f.model)
        where.append(f"id IN (SELECT trace_id FROM spans WHERE kind = 'llm' AND (model {op} ? OR model_requested {op} ?))")
        args += [f.model, f.model]
    if f.min_cost is not None:
        where.append("cost >= ?")
        args.append(f.min_cost)
    if f.min_duration_us is not None:
        where.append("end_us - start_us >= ?")
        args.append(f.min_duration_us)
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


# (A running record is news: the run goes on, a server between requests.)
_QUIET_RUN_RECORD = ("NOT (run_id IS NOT NULL AND run_id = id AND status = 'ok' AND llm_calls = 0 "
                     "AND tool_calls = 0 AND EXISTS (SELECT 1 FROM traces p WHERE p.run_id = traces.id AND p.id != traces.id))")

_FEW_HITS = 20_000  # spans matching a --grep below which listing their traces beats walking all traces


def _searchable(db: sqlite3.Connection) -> None:
    if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'span_text'").fetchone() is None:
        raise UserError("--grep needs SQLite's full-text search (FTS5), which this Python's sqlite3 was built without")


def match_query(text: str) -> str:
    """An FTS5 query for `text`: its words as a phrase, the last one a prefix (`weather serv` finds
    "weather service"), matched case-insensitively; quotes and operators are taken literally."""
    words = text.split()
    if not words:
        raise UserError("bad --grep '': give some text to look for")
    return '"' + " ".join(words).replace('"', '""') + '"*'


def matching_spans(db: sqlite3.Connection, trace_id: str, text: str) -> set[str]:
    """The ids of a trace's spans that hold `text` (see match_query)."""
    _searchable(db)
    return {r[0] for r in db.execute(
        "SELECT s.id FROM span_text JOIN spans s ON s.rowid = span_text.rowid WHERE span_text MATCH ? AND s.trace_id = ?",
        (match_query(text), trace_id))}


def _match_op(pattern: str) -> str:
    """GLOB for a pattern holding * ? or [ (a glob), = otherwise (an exact name)."""
    return "GLOB" if any(c in pattern for c in "*?[") else "="


def like_escape(text: str) -> str:
    """`text` matched literally by LIKE … ESCAPE '\\': its %, _ and \\ escaped."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def newest_running(db: sqlite3.Connection) -> str | None:
    """The newest trace still running (its process alive); for a trace of a `run --split` run, the run's
    own record (following it follows the run: its traces as they come)."""
    for tid, pid, run_id in db.execute(
        "SELECT id, pid, run_id FROM traces WHERE status = 'running' ORDER BY start_us DESC"
    ):
        if not pid_alive(pid):
            continue
        if run_id is not None and run_id != tid:
            row = db.execute("SELECT status, pid FROM traces WHERE id = ?", (run_id,)).fetchone()
            if row is not None and row[0] == "running" and pid_alive(row[1]):
                return run_id
        return tid
    return None


THREAD_KEYS = ("thread_id", "session_id", "conversation_id")  # tags that name a conversation (LangGraph's thread)


def thread_traces(db: sqlite3.Connection, thread: str) -> list[Trace]:
    """The traces of one conversation (tagged thread_id, session_id or conversation_id = `thread`), oldest first."""
    marks = ",".join("?" * len(THREAD_KEYS))
    rows = db.execute(f"""SELECT {_TRACE_COLS} FROM traces WHERE id IN
                          (SELECT trace_id FROM trace_tags WHERE key IN ({marks}) AND value = ?)
                          ORDER BY start_us, id""", (*THREAD_KEYS, thread)).fetchall()
    traces = [_trace_from_row(db, r) for r in rows]
    _attach_tags(db, traces)
    return traces


def run_view(db: sqlite3.Connection, run_id: str, last: int = 50) -> tuple[Totals, list[Span]]:
    """A `run --split` run as `show --follow` draws it: the totals of all its traces, and the spans of
    its own record and of its newest `last` traces."""
    row = db.execute(f"""SELECT {", ".join(f"COALESCE(SUM({c}), 0)" for c in TOTAL_COLUMNS)} FROM span_totals
                         WHERE trace_id IN (SELECT id FROM traces WHERE run_id = ?)""", (run_id,)).fetchone()
    ids = [r[0] for r in db.execute("SELECT id FROM traces WHERE run_id = ? AND id != ? ORDER BY start_us DESC LIMIT ?",
                                    (run_id, run_id, last))]
    spans = [s for tid in [run_id, *reversed(ids)] for s in get_spans(db, tid)]
    return Totals(*row), spans


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
            if n < 0:
                raise UserError(f"bad trace reference {ref!r}: the offset cannot be negative (last~1 is the trace before last)")
        row = db.execute("SELECT id FROM traces ORDER BY start_us DESC LIMIT 1 OFFSET ?", (n,)).fetchone()
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


@dataclass
class RunParts:
    """A split run (`run --split`): its traces, how many failed, and their totals summed."""

    traces: int
    errors: int
    totals: Totals


def run_parts(db: sqlite3.Connection, run_id: str) -> RunParts:
    row = db.execute(
        f"""SELECT SUM(id != run_id), SUM(id != run_id AND status IN ('error', 'interrupted')),
                   {", ".join(f"COALESCE(SUM({c}), 0)" for c in TOTAL_COLUMNS)}
            FROM traces WHERE run_id = ?""",
        (run_id,),
    ).fetchone()
    return RunParts(row[0] or 0, row[1] or 0, Totals(*row[2:]))


def stream_stats(db: sqlite3.Connection, trace_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Per trace, its streamed LLM calls: how many, mean time to first token (µs), chunks received."""
    out: dict[str, dict[str, Any]] = {}
    for chunk, marks in in_lists(trace_ids):
        for tid, n, ttft, chunks in db.execute(
            f"""SELECT trace_id, count(*), AVG(first_token_us - start_us),
                       SUM(CAST(json_extract(metadata, '$.chunks') AS INTEGER))
                FROM spans WHERE kind = 'llm' AND streamed = 1 AND trace_id IN ({marks})
                GROUP BY trace_id""",
            chunk,
        ):
            out[tid] = {"calls": n, "ttft_us": None if ttft is None else round(ttft), "chunks": chunks}
    return out


_S_SPAN_COLS = ", ".join(f"s.{c}" for c in SPAN_COLUMNS)
_NCOLS = len(SPAN_COLUMNS)


def _span_from_row(row: tuple) -> Span:
    fields = dict(zip(SPAN_COLUMNS, row))
    for col in JSON_SPAN_COLUMNS:
        fields[col] = _loads(fields[col])
    fields["tags"] = fields["tags"] or []
    fields["metadata"] = fields["metadata"] or {}
    fields["streamed"] = bool(fields["streamed"])
    return Span(**fields)


def _spans_where(db: sqlite3.Connection, where: str, args: list[Any], *, payloads: bool) -> Iterator[Span]:
    """Spans matching `where` (on table alias s) in (start_us, id) order, one row at a time from the cursor."""
    if not payloads:
        for row in db.execute(f"SELECT {_S_SPAN_COLS} FROM spans s WHERE {where} ORDER BY s.start_us, s.id", args):
            yield _span_from_row(row)
        return
    for row in db.execute(
        f"""SELECT {_S_SPAN_COLS}, p.request, p.response FROM spans s LEFT JOIN payloads p ON p.span_id = s.id
            WHERE {where} ORDER BY s.start_us, s.id""",
        args,
    ):
        span = _span_from_row(row[:_NCOLS])
        span.request, span.response = _loads(row[_NCOLS]), _loads(row[_NCOLS + 1])
        yield span


def iter_spans(db: sqlite3.Connection, trace_id: str, *, payloads: bool = False) -> Iterator[Span]:
    """A trace's spans in (start_us, id) order, read from a cursor as they are consumed (export streams them)."""
    return _spans_where(db, "s.trace_id = ?", [trace_id], payloads=payloads)


def get_spans(db: sqlite3.Connection, trace_id: str, *, payloads: bool = False) -> list[Span]:
    return list(iter_spans(db, trace_id, payloads=payloads))


def load_payloads(db: sqlite3.Connection, spans: list[Span]) -> None:
    """Fill in the request and response of spans read without them (a long run's folded steps)."""
    by_id = {s.id: s for s in spans}
    for chunk, marks in in_lists(list(by_id)):
        for sid, request, response in db.execute(
            f"SELECT span_id, request, response FROM payloads WHERE span_id IN ({marks})", chunk
        ):
            by_id[sid].request, by_id[sid].response = _loads(request), _loads(response)


def find_span(db: sqlite3.Connection, trace_id: str, ref: str) -> Span:
    """The span of a trace whose id (dashes ignored) starts or ends with `ref`, with its payloads.

    Matched in SQL on the ids alone: a 200,000-span trace is not loaded to find one span.
    """
    want = ref.lower().replace("-", "")
    compact = "replace(id, '-', '')"
    ids = [r[0] for r in db.execute(
        f"SELECT id FROM spans WHERE trace_id = ? AND (substr({compact}, 1, ?) = ? OR substr({compact}, -?) = ?)",
        (trace_id, len(want), want, len(want), want),
    )] if want else [r[0] for r in db.execute("SELECT id FROM spans WHERE trace_id = ?", (trace_id,))]
    if len(ids) != 1:
        what = "no span" if not ids else f"{len(ids)} spans"
        raise UserError(f"{what} of trace {trace_id[:8]} match {ref!r}")
    return next(_spans_where(db, "s.id = ?", [ids[0]], payloads=True))


def spans_with_traceback(db: sqlite3.Connection, trace_id: str) -> list[Span]:
    """The spans of a trace whose metadata holds a traceback (those that failed), in start order."""
    spans = _spans_where(db, "s.trace_id = ? AND s.metadata LIKE '%traceback%'", [trace_id], payloads=False)
    return [s for s in spans if isinstance(s.metadata, dict) and s.metadata.get("traceback")]


# --- long traces: the first and last top-level steps, the rest counted ---------------------------------


@dataclass
class FoldedSpans:
    """What `show` draws of a trace with many top-level steps (root spans): the spans under the first
    and the last few, loaded; the steps between them only counted."""

    head: list[Span]
    tail: list[Span]
    hidden: int  # top-level steps between head and tail
    steps: int  # top-level steps in all


def count_steps(db: sqlite3.Connection, trace_id: str) -> int:
    """Top-level steps of a trace: its spans without a parent (one per agent/chain invocation of the script)."""
    return db.execute("SELECT count(*) FROM spans WHERE trace_id = ? AND parent_id IS NULL", (trace_id,)).fetchone()[0]


def get_folded_spans(db: sqlite3.Connection, trace_id: str, keep: int) -> FoldedSpans | None:
    """The spans under the first `keep` and the last `keep` top-level steps, or None when the trace has
    no more than 2 × keep of them (then it is shown whole).

    Only those steps are read: each step's spans are looked for between its start and its end (the
    trace_id + start_us index), and kept if their parents lead up to a shown step. A span whose parent is
    not in the trace at all (a killed run's unfinished parent) is shown at the top, as a full tree shows it.
    """
    total = count_steps(db, trace_id)
    if total <= 2 * keep:
        return None
    roots = "SELECT id, start_us, end_us FROM spans WHERE trace_id = ? AND parent_id IS NULL ORDER BY start_us {0}, id {0} LIMIT ?"
    first = db.execute(roots.format("ASC"), (trace_id, keep + 1)).fetchall()
    last = db.execute(roots.format("DESC"), (trace_id, keep)).fetchall()
    head_roots, next_start = first[:keep], first[keep][1]
    head_end = max([next_start - 1] + [end for _, _, end in head_roots if end is not None])
    head = _members(db, trace_id, _spans_where(db, "s.trace_id = ? AND s.start_us BETWEEN ? AND ?",
                                               [trace_id, head_roots[0][1], head_end], payloads=False),
                    {r[0] for r in head_roots}, set())
    tail_start = min(start for _, start, _ in last)
    tail = _members(db, trace_id, _spans_where(db, "s.trace_id = ? AND s.start_us >= ?", [trace_id, tail_start], payloads=False),
                    {r[0] for r in last}, {s.id for s in head})
    return FoldedSpans(head, tail, total - len(head_roots) - len(last), total)


def _members(db: sqlite3.Connection, trace_id: str, spans: Iterator[Span], roots: set[str], exclude: set[str]) -> list[Span]:
    """Of the spans read in a time window, those under one of `roots` or under no span of the trace."""
    window = [s for s in spans if s.id not in exclude]
    by_id = {s.id: s for s in window}
    top: dict[str, str] = {}  # span id → the highest ancestor found in the window
    for span in window:
        path: list[str] = []
        cur = span
        while cur.id not in top:
            path.append(cur.id)
            parent = by_id.get(cur.parent_id) if cur.parent_id is not None else None
            if parent is None or parent.id in path:  # a top in this window (or a loop in damaged data)
                top[cur.id] = cur.id
                break
            cur = parent
        found = top[cur.id]
        for sid in path:
            top[sid] = found
    # A top with a parent outside the window: under a step not shown, unless that parent is not in the trace.
    dangling = sorted({by_id[t].parent_id for t in set(top.values()) if by_id[t].parent_id is not None})
    present: set[str] = set()
    for chunk, marks in in_lists(dangling):
        present.update(r[0] for r in db.execute(
            f"SELECT id FROM spans WHERE trace_id = ? AND id IN ({marks})", [trace_id, *chunk]))
    shown = {t for t in set(top.values())
             if (by_id[t].parent_id is None and t in roots) or (by_id[t].parent_id is not None and by_id[t].parent_id not in present)}
    return [s for s in window if top[s.id] in shown]


GROUPINGS = ("model", "day", "trace", "run", "name", "tag:KEY")


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
    streamed_calls: int = 0
    ttft_us: float | None = None  # mean time to first token of the streamed calls


MOCK_RUN = "EXISTS (SELECT 1 FROM trace_tags m WHERE m.trace_id = s.trace_id AND m.key = 'mock' AND m.value = 'true')"


def cost_report(db: sqlite3.Connection, since_us: int | None, until_us: int | None, by: str = "model",
                include_mock: bool = True) -> list[CostRow]:
    """LLM calls grouped by model, local day, trace, run, trace name or a tag's value, costliest first.
    A model is named as the trace recorded it: the model answering, the one asked for, else the span's name
    (a chat model class that reports no model name). `include_mock=False` leaves out `run --mock` runs."""
    args: list[Any] = []
    join = ""
    order = "cost DESC, grp"
    if by == "model":
        key, label = "COALESCE(s.model, s.model_requested, s.name, '(unknown)')", "''"
    elif by == "day":
        key, label, order = "date(s.start_us / 1000000, 'unixepoch', 'localtime')", "''", "grp"
    elif by == "trace":
        key, label = "s.trace_id", "COALESCE(t.name, '')"
        join = "LEFT JOIN traces t ON t.id = s.trace_id"
    elif by == "run":  # a split run's traces together; any other trace is a run of its own
        key, label = "COALESCE(t.run_id, s.trace_id)", "COALESCE(r.name, t.name, '')"
        join = "LEFT JOIN traces t ON t.id = s.trace_id LEFT JOIN traces r ON r.id = t.run_id"
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
    if not include_mock:
        where.append("NOT " + MOCK_RUN)
    if since_us is not None:
        where.append("s.start_us >= ?")
        args.append(since_us)
    if until_us is not None:
        where.append("s.start_us < ?")
        args.append(until_us)
    sql = f"""SELECT {key} AS grp, MAX({label}) AS label, count(*), COALESCE(SUM(s.input_tokens), 0),
                     COALESCE(SUM(s.output_tokens), 0), COALESCE(SUM(s.cost), 0) AS cost,
                     SUM(s.cache_hit IS NOT NULL), COALESCE(SUM(s.cost_saved), 0),
                     SUM(s.cost IS NULL AND s.status != 'error' AND s.cache_hit IS NULL),
                     SUM(s.streamed = 1 AND s.first_token_us IS NOT NULL),
                     AVG(CASE WHEN s.streamed = 1 THEN s.first_token_us - s.start_us END)
              FROM spans s {join}
              WHERE {" AND ".join(where)}
              GROUP BY grp ORDER BY {order}"""
    return [CostRow(*row) for row in db.execute(sql, args)]


def mock_calls(db: sqlite3.Connection, since_us: int | None, until_us: int | None) -> int:
    """LLM calls of `run --mock` runs in the period (the ones `cost` leaves out by default)."""
    sql = f"SELECT count(*) FROM spans s WHERE s.kind = 'llm' AND {MOCK_RUN}"
    args: list[Any] = []
    for cond, value in (("s.start_us >= ?", since_us), ("s.start_us < ?", until_us)):
        if value is not None:
            sql += " AND " + cond
            args.append(value)
    return int(db.execute(sql, args).fetchone()[0])
