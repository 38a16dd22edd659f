"""Small pieces tested alone: ids, redaction, migrations, id prefixes, the tree renderer."""

from __future__ import annotations

import io
import json
import sqlite3
import uuid
from pathlib import Path

import pytest
from rich.console import Console

from llmtrace.errors import UserError
from llmtrace.ids import new_trace_id, short_id, uuid7
from llmtrace.model import Span, Totals, Trace
from llmtrace.redact import REDACTED, Redactor, is_secret_key
from llmtrace.render.tree import render_tree
from llmtrace.store import open_store
from llmtrace.store.queries import get_spans, resolve_trace_id
from llmtrace.store.schema import MIGRATIONS
from llmtrace.store.writer import JsonEncoder, StoreWriter


def test_uuid7_is_version_7_and_time_ordered():
    ids = [uuid7() for _ in range(200)]
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in ids)
    ms = [u.int >> 80 for u in ids]
    assert ms == sorted(ms)
    assert len({short_id(new_trace_id()) for _ in range(200)}) == 200


@pytest.mark.parametrize("key, secret", [
    ("api_key", True), ("OPENAI_API_KEY", True), ("Authorization", True), ("client_secret", True),
    ("access_token", True), ("token", True), ("password", True),
    ("max_tokens", False), ("input_tokens", False), ("tokens", False), ("key", False), ("model", False),
    ("X-Api-Key", True), ("id_token", True), ("Cookie", True), ("private-key", True), ("passwd", True),
])
def test_secret_key_names(key, secret):
    from llmtrace.redact import has_key_fragment

    assert is_secret_key(key) is secret
    if secret:  # the writer's fast path skips the field walk only when no fragment occurs
        assert has_key_fragment(f'{{"{key}": 1}}')


def test_redactor_values_and_shapes():
    r = Redactor({"my-very-secret-value"})
    obj = r.obj({"api_key": "x" * 10, "nested": [{"Authorization": "Bearer abc"}], "max_tokens": 5})
    assert obj == {"api_key": REDACTED, "nested": [{"Authorization": REDACTED}], "max_tokens": 5}
    text = r.text("a my-very-secret-value b sk-abcdefghijklmnopqrstuvwx c Bearer abcdefghijklmnopqrst")
    assert "secret-value" not in text and "sk-abc" not in text and "abcdefghijklmnopqrst" not in text
    r.add_secret("short")  # too short to be a key: not treated as one
    assert r.text("short") == "short"


def test_encoder_caps_and_odd_values():
    enc = JsonEncoder(Redactor(), cap=2000)
    big = enc({"x": "y" * 5000})
    assert '"llmtrace_truncated": true' in big and len(big) < 2200
    assert enc({"b": b"\xff\xfe", "s": {1, 2}, "o": object()}).startswith('{"b": "')
    loop: dict = {}
    loop["self"] = loop
    assert "llmtrace_unserialisable" in enc(loop)
    assert enc("\udcff lone surrogate")  # stored, not crashing sqlite


def test_migrations_recorded_once_each(tmp_path):
    path = tmp_path / "t.db"
    open_store(path).close()
    db = open_store(path)  # second open applies nothing
    names = [r[0] for r in db.execute("SELECT name FROM schema_migrations ORDER BY rowid")]
    assert names == [n for n, _ in MIGRATIONS]
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _schema_of(db: sqlite3.Connection) -> dict:
    """Every table, column, index, view and trigger, with its SQL as SQLite keeps it, spaces aside
    (a column added by ALTER TABLE is appended to the CREATE TABLE text with a line break and ", ")."""
    import re

    def norm(sql: str) -> str:
        return re.sub(r"\s*([(),;])\s*", r"\1", " ".join(sql.split()))

    rows = db.execute("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL")
    objects = {(t, n): norm(sql) for t, n, sql in rows}
    columns = {t: db.execute(f"PRAGMA table_xinfo({t})").fetchall() for (kind, t) in objects if kind == "table"}
    indexes = {i: db.execute(f"PRAGMA index_xinfo({i})").fetchall() for (kind, i) in objects if kind == "index"}
    names = [r[0] for r in db.execute("SELECT name FROM schema_migrations ORDER BY rowid")]
    return {"objects": objects, "columns": columns, "indexes": indexes, "migrations": names,
            "version": db.execute("PRAGMA user_version").fetchone()[0]}


def test_a_new_store_made_in_one_step_is_the_store_the_migrations_make(tmp_path, monkeypatch):
    """A new store is made from schema.FRESH_SCHEMA, not by replaying the migrations: no migration
    runs, and what it holds is what replaying them all makes, table by table, column by column."""
    from llmtrace.store import schema

    def never(db: sqlite3.Connection) -> None:
        raise AssertionError("a migration ran on a new store")

    with monkeypatch.context() as m:
        m.setattr("llmtrace.store.db.MIGRATIONS", [(name, never) for name, _ in MIGRATIONS])
        fresh = open_store(tmp_path / "fresh.db")
    with monkeypatch.context() as m:
        m.setattr(schema, "FRESH_VERSION", 0)
        replayed = open_store(tmp_path / "replayed.db")
    assert _schema_of(fresh) == _schema_of(replayed)
    assert _schema_of(fresh)["version"] == len(MIGRATIONS) == schema.FRESH_VERSION
    # A statement SQLite refuses (as CREATE VIRTUAL TABLE … fts5 where SQLite lacks FTS5): nothing of
    # the one step is kept, and the migrations are replayed instead.
    with monkeypatch.context() as m:
        refused = tuple(sql.replace("USING fts5", "USING no_such_module") for sql in schema.FRESH_SCHEMA)
        m.setattr(schema, "FRESH_SCHEMA", refused)
        fallback = open_store(tmp_path / "fallback.db")
    assert _schema_of(fallback) == _schema_of(replayed)
    # A store made either way takes spans, and finds them by text.
    for db in (fresh, replayed):
        w = StoreWriter(db, Redactor())
        w.start_trace(Trace(id="t1", name="t", start_us=1))
        w.write_span(Span(id="s1", trace_id="t1", parent_id=None, kind="llm", name="needle", start_us=2, end_us=3))
        assert db.execute("SELECT rowid FROM span_text WHERE span_text MATCH 'needle'").fetchall()


def test_failed_migration_rolls_back(tmp_path, monkeypatch):
    from llmtrace.store import schema

    def m999_broken(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("boom")

    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, ("m999_broken", m999_broken)])
    monkeypatch.setattr("llmtrace.store.db.MIGRATIONS", schema.MIGRATIONS)
    with pytest.raises(RuntimeError):
        open_store(tmp_path / "t.db")
    db = sqlite3.connect(tmp_path / "t.db")
    assert db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'half_done'").fetchone()[0] == 0
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) - 0  # earlier ones kept


def _writer(tmp_path):
    return StoreWriter(open_store(tmp_path / "t.db"), Redactor())


def test_resolve_prefixes(tmp_path):
    w = _writer(tmp_path)
    ids = ["abcd1234-0000-4000-8000-000000000001", "abcd1234-0000-4000-8000-000000000002", "ef000000-0000-4000-8000-000000000003"]
    for i, tid in enumerate(ids):
        w.start_trace(Trace(id=tid, name="t", start_us=1_000_000 * (i + 1)))
    db = w.db
    assert resolve_trace_id(db, "ef") == ids[2]
    assert resolve_trace_id(db, ids[1].replace("-", "")) == ids[1]
    assert resolve_trace_id(db, "abcd1234-0000-4000-8000-000000000001") == ids[0]
    assert resolve_trace_id(db, "last") == ids[2] and resolve_trace_id(db, "last~2") == ids[0]
    with pytest.raises(UserError, match="ambiguous"):
        resolve_trace_id(db, "abcd")
    with pytest.raises(UserError, match="no trace matches"):
        resolve_trace_id(db, "99")


def test_finish_traces_sets_each_trace_totals_from_its_own_spans(tmp_path):
    """The helper finishes the requests a server answered in one batch: one commit, each trace its own totals."""
    w = _writer(tmp_path)
    traces = [Trace(id=f"00000000-0000-4000-8000-00000000000{i}", name=f"answer: n={i}", start_us=1_000 * (i + 1)) for i in range(3)]
    for i, t in enumerate(traces):
        w.start_trace(t)
        w.write_spans([Span(id=f"s{i}-{k}", trace_id=t.id, parent_id=None, kind="llm", name="ChatOpenAI", start_us=t.start_us + k,
                            end_us=t.start_us + k + 1, status="ok", input_tokens=10 * (i + 1), output_tokens=1, cost=0.001)
                       for k in range(i + 1)])
        t.end_us, t.status = t.start_us + 100, "ok"
    commits = []
    w.db.set_trace_callback(lambda sql: commits.append(sql) if sql.strip().upper() == "COMMIT" else None)
    w.finish_traces(traces)
    w.db.set_trace_callback(None)
    assert len(commits) == 1
    assert [(t.totals.llm_calls, t.totals.input_tokens) for t in traces] == [(1, 10), (2, 40), (3, 90)]
    stored = w.db.execute("SELECT llm_calls, input_tokens, status, end_us FROM traces ORDER BY start_us").fetchall()
    assert stored == [(1, 10, "ok", 1_100), (2, 40, "ok", 2_100), (3, 90, "ok", 3_100)]


def test_spool_left_by_a_killed_split_run_finishes_the_traces_that_had_ended(tmp_path):
    """A split trace's start (`B`) and end (`E`) go by the spool with its spans: loading the spool of a run
    killed before its helper stored them gives each ended trace its status, error (redacted) and totals;
    one that had not ended stays running."""
    from llmtrace.store.helper import HelperSpoolingWriter
    from llmtrace.store.spool import _load

    w = StoreWriter(open_store(tmp_path / "t.db"), Redactor({"sk-secret-value-123456"}))
    spooler = HelperSpoolingWriter(w, tmp_path, "run-1")  # too few records to start its helper
    ended, open_ = (Trace(id=f"00000000-0000-4000-8000-00000000000{i}", name=f"answer: n={i}", start_us=10 * i, run_id="run-1")
                    for i in (1, 2))
    for t in (ended, open_):
        spooler.start_trace(t)
        spooler.write_span(Span(id=f"s-{t.id}", trace_id=t.id, parent_id=None, kind="llm", name="ChatOpenAI", start_us=t.start_us,
                                end_us=t.start_us + 1, status="ok", input_tokens=7, output_tokens=2))
    ended.end_us, ended.status, ended.error = 99, "error", "401: bad key sk-secret-value-123456"
    spooler.end_trace(ended)
    assert b"sk-secret-value-123456" not in spooler.path.read_bytes()
    assert _load(w.db, spooler.path, w.redactor) == 2  # the spans; the traces begun and ended around them
    rows = dict((r[0], r[1:]) for r in w.db.execute("SELECT id, status, end_us, error, llm_calls, input_tokens FROM traces"))
    assert rows[ended.id][:2] == ("error", 99) and "sk-secret" not in rows[ended.id][2] and rows[ended.id][3:] == (1, 7)
    assert rows[open_.id][:2] == ("running", None)


def _math_trace() -> tuple[Trace, list[Span]]:
    t0 = 1_800_000_000_000_000
    trace = Trace(id="f33559dd-47e4-4128-911c-a83de7501845", name="math_agent.py", start_us=t0, end_us=t0 + 2_250_000,
                  status="ok", exit_code=0, tags={"env": "dev"},
                  totals=Totals(llm_calls=4, tool_calls=3, input_tokens=964, output_tokens=82, cost=0.000194))
    spans = [Span(id="s00", trace_id=trace.id, parent_id=None, kind="chain", name="AgentExecutor", start_us=t0 + 10, end_us=t0 + 279_010, status="ok")]
    calls = [("exponentiate", {"base": 3, "exponent": 5}, 243), ("multiply", {"first_int": 243, "second_int": 36}, 8748),
             ("exponentiate", {"base": 8748, "exponent": 2}, 76527504)]
    t = t0 + 100
    for i in range(4):
        seq = Span(id=f"q{i}", trace_id=trace.id, parent_id="s00", kind="chain", name="RunnableSequence", start_us=t, end_us=t + 20_000, status="ok")
        prompt = Span(id=f"p{i}", trace_id=trace.id, parent_id=f"q{i}", kind="chain", name="ChatPromptTemplate", start_us=t + 1, end_us=t + 2, status="ok")
        llm = Span(id=f"l{i}", trace_id=trace.id, parent_id=f"q{i}", kind="llm", name="ChatOpenAI", start_us=t + 10, end_us=t + 15_010,
                   status="ok", model="gpt-4o-mini-2024-07-18", input_tokens=174 + 45 * i, output_tokens=20, cost=0.000037 + i * 0.000008)
        if i < 3:
            name, args, result = calls[i]
            llm.tool_calls = [{"name": name, "args": args, "id": f"c{i}"}]
            tool = Span(id=f"t{i}", trace_id=trace.id, parent_id="s00", kind="tool", name=name, start_us=t + 20_001,
                        end_us=t + 20_400, status="ok", inputs=args, outputs=result)
            spans += [seq, prompt, llm, tool]
        else:
            llm.outputs = {"content": "The result is 76527504."}
            spans += [seq, prompt, llm]
        t += 30_000
    spans.append(Span(id="t9", trace_id=trace.id, parent_id="s00", kind="tool", name="lookup", start_us=t, end_us=t + 5000,
                      status="error", inputs={"q": "x"}, error_type="ValueError", error_message="no such thing"))
    return trace, spans


def _render(renderable, width=110) -> str:
    buf = io.StringIO()
    Console(file=buf, width=width, color_system=None, legacy_windows=False).print(renderable, soft_wrap=True)
    return buf.getvalue()


MATH_TREE = """\
math_agent.py f33559dd  ok  2.25s  · 4 LLM calls · 3 tool calls · 964 in / 82 out tokens · $0.000194  env=dev
└── chain AgentExecutor  279ms
    ├── LLM gpt-4o-mini-2024-07-18  174 in / 20 out  $0.000037  15ms  → exponentiate(base=3, exponent=5)
    ├── tool exponentiate(base=3, exponent=5) → 243  0ms
    ├── LLM gpt-4o-mini-2024-07-18  219 in / 20 out  $0.000045  15ms  → multiply(first_int=243, second_int=36)
    ├── tool multiply(first_int=243, second_int=36) → 8748  0ms
    ├── LLM gpt-4o-mini-2024-07-18  264 in / 20 out  $0.000053  15ms  → exponentiate(base=8748, exponent=2)
    ├── tool exponentiate(base=8748, exponent=2) → 76527504  0ms
    ├── LLM gpt-4o-mini-2024-07-18  309 in / 20 out  $0.000061  15ms  → The result is 76527504.
    └── tool lookup(q="x")  5ms  ✗ ValueError: no such thing
"""


def test_math_agent_tree_folds_plumbing():
    trace, spans = _math_trace()
    assert _render(render_tree(trace, spans)) == MATH_TREE


def test_tree_all_shows_plumbing():
    trace, spans = _math_trace()
    out = _render(render_tree(trace, spans, show_all=True))
    assert out.count("chain RunnableSequence") == 4 and out.count("chain ChatPromptTemplate") == 4
    assert "    │   └── LLM gpt-4o-mini-2024-07-18  174 in" in out  # under its RunnableSequence


def test_written_spans_round_trip(tmp_path):
    w = _writer(tmp_path)
    trace, spans = _math_trace()
    w.start_trace(trace)
    for s in spans:
        w.write_span(s)
    back = get_spans(w.db, trace.id)
    assert [(s.id, s.parent_id, s.kind, s.inputs, s.outputs, s.tool_calls) for s in back] == \
        [(s.id, s.parent_id, s.kind, s.inputs, s.outputs, s.tool_calls) for s in sorted(spans, key=lambda s: (s.start_us, s.id))]


def test_spool_files_are_found_by_trace_and_suffix_as_a_glob_would(tmp_path):
    from llmtrace.store.spool import _spools

    names = ["t1.spool", "t1.42.spool", "t1.42.jsonl", "t1.7.spool.tmp", "t2.9.spool", "t1.live", "t10.3.spool",
             "x.jsonl"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    for prefix in ("t1.", "t2.", "t1", ""):
        want = [p for suffix in (".spool", ".jsonl") for p in sorted(tmp_path.glob(f"{prefix}*{suffix}"))]
        assert _spools(tmp_path, prefix) == want, prefix
    assert [p.name for p in _spools(tmp_path, "t1.")] == ["t1.42.spool", "t1.42.jsonl"]
    assert _spools(tmp_path / "absent", "t1.") == []


def test_spool_written_at_span_end_and_recovered_after_a_kill(tmp_path):
    """A run killed before its writer thread caught up: the next open loads the spool."""
    import subprocess as sp
    import sys

    from llmtrace.store.spool import SpoolingWriter, read_records, spool_dir

    home = tmp_path / "home"
    db = open_store(home / "traces.db")
    w = StoreWriter(db, Redactor({"super-secret-value-1"}))
    dead = sp.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    w.start_trace(Trace(id="killed-trace", name="k", start_us=1, pid=dead.pid))
    spool = SpoolingWriter(w, spool_dir(home), "killed-trace")
    spool._queue.put(object())  # jam the writer thread: nothing more reaches SQLite
    for i in range(3):
        spool.write_span(Span(id=f"s{i}", trace_id="killed-trace", parent_id=None, kind="llm", name="x", start_us=i,
                              end_us=i + 1, status="ok", inputs={"prompt": "super-secret-value-1"}))
    # The bytes are in the file (the kernel's page cache) already, with no flush or close.
    spool.write_span(Span(id="s3", trace_id="killed-trace", parent_id=None, kind="llm", name="x", start_us=3,
                          end_us=4, status="ok", inputs={"prompt": "nothing to hide"}))
    data = (spool_dir(home) / "killed-trace.spool").read_bytes()
    records = read_records(data)
    # Spans holding a secret are redacted before they are written; a clean one is kept as a snapshot.
    assert [tag for tag, _ in records] == [b"J", b"J", b"J", b"M"]
    assert b"super-secret-value-1" not in data and b"REDACTED" in data
    torn = records[-1][1][: len(records[-1][1]) // 2]  # the append the kill cut short: a record half written
    spool.file.append_record(b"M", torn + b"\0" * (len(records[-1][1]) - len(torn)))
    db.close()
    db2 = open_store(home / "traces.db")  # what any later command does
    assert [r[0] for r in db2.execute("SELECT id FROM spans ORDER BY id")] == ["s0", "s1", "s2", "s3"]
    assert not (spool_dir(home) / "killed-trace.spool").exists()
    assert json.loads(db2.execute("SELECT inputs FROM spans WHERE id = 's0'").fetchone()[0]) == {"prompt": "[REDACTED]"}


def test_a_spool_written_by_an_earlier_version_is_still_recovered(tmp_path):
    from llmtrace.store.spool import spool_dir
    from llmtrace.store.writer import RowEncoder

    home = tmp_path / "home"
    db = open_store(home / "traces.db")
    StoreWriter(db, Redactor()).start_trace(Trace(id="old-run", name="k", start_us=1, pid=2 ** 22 + 7))
    db.close()
    rows = [RowEncoder(Redactor()).rows(Span(id=f"s{i}", trace_id="old-run", parent_id=None, kind="llm", name="x",
                                                start_us=i, end_us=i + 1, status="ok", inputs={"i": i})) for i in range(2)]
    spool_dir(home).mkdir(parents=True)
    (spool_dir(home) / "old-run.jsonl").write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in rows) + b"\0" * 64)
    db2 = open_store(home / "traces.db")
    assert [r[0] for r in db2.execute("SELECT id FROM spans ORDER BY id")] == ["s0", "s1"]
    assert not list(spool_dir(home).iterdir())


@pytest.mark.parametrize("fields", [
    {"inputs": {"messages": [{"role": "user", "content": "héllo \ud800 ✓"}]}, "outputs": {"content": ""}},
    {"inputs": {"s": {1, 2}, "b": b"\xff bytes"}, "metadata": {"params": {"max_tokens": 5}, "n": [1.5, None, True]}},
    {"outputs": 0, "tool_calls": [], "metadata": {}, "error_message": "boom"},
    {"request": {"model": "m", "messages": []}, "response": {"usage": {"prompt_tokens": 3}}},
])
def test_a_span_snapshot_encodes_to_exactly_the_rows_of_the_direct_path(fields):
    from llmtrace.store.writer import RowEncoder

    enc = RowEncoder(Redactor({"super-secret-value-1"}))
    span = Span(id="s", trace_id="t", parent_id=None, kind="llm", name="x", start_us=1, end_us=2, status="ok", **fields)
    blob = enc.snapshot(span)
    assert blob is not None
    assert enc.snapshot_rows(blob) == enc.rows(span)


@pytest.mark.parametrize("fields", [
    {"inputs": {"prompt": "say super-secret-value-1"}},
    {"metadata": {"client": {"api_key": "abc"}}},
    {"outputs": "sk-abcdefghijklmnopqrstuvwxyz"},
    {"error_message": "401: Bearer abcdefghijklmnopqrstuvwx"},
    {"response": {"t": "ghp_abcdefghijklmnopqrstuvwxyz0123456789"}},
    {"response": {"usage": {"prompt_tokens": 3}, "token": "t"}},
    {"response": {"usage": {"prompt_tokens": 3}, "id_tokens": ["t"]}},
    {"response": {"usage": {"completion_tokens": 3}, "access_tokens": ["t"]}},
    {"response": {"usage": {"cached_tokens": 3}, "refresh_tokens": ["t"]}},
    {"response": {"usage": {"total_tokens": 3}, "auth_tokens": ["t"]}},
    {"response": {"usage": {"max_tokens": 3}, "session_tokens": ["t"]}},
    {"inputs": {"access-tokens": "t", "total_tokens": 3}},
    {"metadata": {"params": {"max_tokens": 5}, "x": {"Auth_Token": "t"}}},
    {"inputs": {"x": object()}},
])
def test_a_span_with_anything_to_redact_is_never_snapshotted(fields):
    from llmtrace.store.writer import RowEncoder

    enc = RowEncoder(Redactor({"super-secret-value-1"}))
    span = Span(id="s", trace_id="t", parent_id=None, kind="llm", name="x", start_us=1, end_us=2, status="ok", **fields)
    assert enc.snapshot(span) is None


# Pieces of names and texts near what redaction acts on: fragments of credential names, "…_tokens"
# count names and the credential patterns they can hide, key shapes, the secret, non-ASCII.
_NEAR_MISSES = ["key", "Key", "API_KEY", "monkey", "secret", "passw", "authoriz", "credential", "token", "tokens",
                "_tokens", "prompt_tokens", "completion_tokens", "cached_tokens", "max_tokens", "id_token", "id_tokens",
                "paid_tokens", "access_tokens", "auth_tokens", "refresh-token", "session_tokens", "s_tokens", "bearer",
                "Bearer ", "cookie", "sk-", "AKIA", "gh", "ghp_", "right", "super-secret-value-1", "super-secret",
                "abcdefghijklmnopqrstuvwxyz0123456789", "é", "✓", "x", " ", "_"]


def test_a_span_snapshot_is_taken_only_when_redaction_would_change_nothing():
    """The snapshot skips redaction; whenever it is taken, the rows it gives must be the redacted rows."""
    import random

    from llmtrace.store.writer import RowEncoder

    rnd = random.Random(7)

    def text() -> str:
        return "".join(rnd.choice(_NEAR_MISSES) for _ in range(rnd.randint(0, 4)))

    def value(depth: int = 0) -> object:
        roll = rnd.random()
        if depth > 2 or roll < 0.4:
            return text()
        if roll < 0.5:
            return rnd.randint(0, 9)
        if roll < 0.75:
            return {text(): value(depth + 1) for _ in range(rnd.randint(0, 3))}
        return [value(depth + 1) for _ in range(rnd.randint(0, 3))]

    enc = RowEncoder(Redactor({"super-secret-value-1"}))
    taken = 0
    for i in range(3000):
        span = Span(id=f"s{i}", trace_id="t", parent_id=None, kind="llm", name="x", start_us=1, end_us=2,
                    status="ok", inputs=value(), metadata={"m": value()}, response=value())
        blob = enc.snapshot(span)
        if blob is not None:
            taken += 1
            assert enc.snapshot_rows(blob) == enc.rows(span), span
    assert 300 < taken < 2700  # both ways were tried

def test_pricing_cached_tokens_and_unknown_models():
    from llmtrace import pricing

    # gpt-4o-mini: $0.15 / M input, $0.075 / M cached input, $0.60 / M output
    assert pricing.cost("gpt-4o-mini-2024-07-18", "openai", 1000, 100, 200) == pytest.approx((800 * 0.15 + 200 * 0.075 + 100 * 0.6) / 1e6)
    assert pricing.cost("gpt-4o-mini", "openai", 1000, 100, 0) == pytest.approx((1000 * 0.15 + 100 * 0.6) / 1e6)
    assert pricing.cost("no-such-model-x", "openai", 1000, 100) is None
    assert pricing.cost("gpt-4o-mini", "openai", None, 100) is None  # unknown tokens: unpriced, not $0


def test_cache_size_limit_evicts(tmp_path):
    from llmtrace.store.cache import CacheSettings, ResponseCache, request_key

    cache = ResponseCache(CacheSettings(directory=tmp_path / "c", size_limit_bytes=256 * 1024))
    keys = [request_key({"model": "m", "messages": [{"role": "user", "content": str(i)}]}, "u") for i in range(400)]
    for k in keys:
        cache.set(k, 200, [["content-type", "application/json"]], [b'{"choices": [{"message": {"content": "%s"}}]}' % (b"x" * 4000)], False)
    cache.flush()  # answers are written behind the calls: all on disk (and evicted) once flushed
    present = [cache.get(k) is not None for k in keys]
    kept = sum(present)
    assert 0 < kept < 400 and cache.store.volume() < 2 * 256 * 1024
    # The least recently stored went first: what is left is exactly the newest `kept` answers.
    assert present == [False] * (400 - kept) + [True] * kept
    cache.close()


def _filled_cache(directory, n, **settings):
    from llmtrace.store.cache import CacheSettings, ResponseCache

    cache = ResponseCache(CacheSettings(directory=directory, **settings))
    keys = [f"{i:064x}.0" for i in range(n)]
    for i, k in enumerate(keys):
        cache.set(k, 200, [["content-type", "application/json"]], [b'{"n": %d}' % i], False)
    cache.flush()
    return cache, keys


def _count_reads(cache):
    """How many SQL statements the cache's diskcache runs from here on."""
    reads = []
    sql = type(cache.store)._sql.fget

    class Counting(type(cache.store)):
        @property
        def _sql(self):
            reads.append(1)
            return sql(self)

    cache.store.__class__ = Counting
    return reads


def test_cache_reads_ahead_in_stored_order_and_answers_as_without(tmp_path):
    """A replay asks for answers in the order they were stored: one SQLite read serves many calls, the
    window growing while the rows read ahead are used; any other order gets the same answers."""
    cache, keys = _filled_cache(tmp_path / "c", 300)
    reads = _count_reads(cache)
    assert [cache.get(k)["parts"] for k in keys] == [[b'{"n": %d}' % i] for i in range(300)]
    assert len(reads) <= 6, len(reads)  # 16, 32, 64, 128, 256 rows: not one read a call
    # A call that was never stored, amid a replay: a miss, and the rows read ahead still serve the rest.
    del reads[:]
    assert cache.get(keys[0]) is not None and cache.get("e" * 64 + ".0") is None
    assert [cache.get(k)["parts"] for k in keys[1:40]] == [[b'{"n": %d}' % i] for i in range(1, 40)]
    assert len(reads) == 2, len(reads)  # the first key and the unknown one: the rest were read ahead
    cache.close()

    import random

    cache, keys = _filled_cache(tmp_path / "c", 300)  # the same folder, a new process's view of it
    reads = _count_reads(cache)
    order = list(range(300))
    random.Random(7).shuffle(order)
    assert [cache.get(keys[i])["parts"] for i in order] == [[b'{"n": %d}' % i] for i in order]
    assert cache.get("f" * 64 + ".0") is None
    assert len(reads) <= 301 + 2  # out of order the window shrinks to one row: a read a call, as without
    cache.close()


def test_cache_read_ahead_never_serves_what_diskcache_would_not(tmp_path):
    from llmtrace.store.cache import VERSION

    cache, keys = _filled_cache(tmp_path / "c", 20)
    # Read ahead with an expiry (diskcache's own, real time) that has passed: a miss, as diskcache.get says.
    cache.store._sql("UPDATE Cache SET expire_time = 1 WHERE key = ?", ("r:" + keys[1],))
    assert cache.store.get("r:" + keys[1]) is None
    assert cache.get(keys[0]) is not None
    assert ("r:" + keys[1]) in cache._ahead
    assert cache.get(keys[1]) is None
    # An answer written in this run is found before a row read ahead for the same key.
    assert ("r:" + keys[2]) in cache._ahead
    cache._pending[keys[2]] = {"v": VERSION, "status": 200, "headers": [], "parts": [b"new"], "sse": False, "stored_s": 0}
    assert cache.get(keys[2])["parts"] == [b"new"]
    # A row read ahead that no longer decodes: diskcache is asked instead.
    cache._ahead["r:" + keys[3]] = (None, 1, None, b"not an answer")
    assert cache.get(keys[3])["parts"] == [b'{"n": 3}']
    cache.close()


def test_cache_writes_a_batch_as_diskcache_set_would(tmp_path):
    """Answers written behind the calls go in as one insert, with the rows diskcache's own `set` writes:
    the same key, value and size columns, its count and size settings kept (diskcache's `check` agrees),
    an answer stored before under the same key replaced, a value kept in a file written and removed."""
    import diskcache

    from llmtrace import clock
    from llmtrace.store.cache import CacheSettings, ResponseCache, encode_entry

    headers = [["content-type", "application/json"]]
    now = clock.now()

    def entry(i, body=None):
        return {"v": 2, "status": 200, "headers": headers, "parts": [body or b'{"n": %d}' % i], "sse": False, "stored_s": now}

    batched = ResponseCache(CacheSettings(directory=tmp_path / "a", ttl_s=3600))
    statements: list[str] = []
    batched.store._con.set_trace_callback(statements.append)
    batched._write([(f"{i:064x}.0", entry(i)) for i in range(50)])
    batched.store._con.set_trace_callback(None)
    assert len({s for s in statements if s.startswith("INSERT INTO Cache")}) == 3  # 32 + 16 + 2 rows, not one a row
    batched._write([(f"{3:064x}.0", entry(3, b"again"))])  # the same key: replaced, not a second row
    by_set = diskcache.Cache(str(tmp_path / "b"), disk_min_file_size=1 << 30)
    for i in range(50):
        by_set.set(f"r:{i:064x}.0", encode_entry(entry(i, b"again" if i == 3 else None)), expire=3660)
    cols = "key, raw, access_count, tag, size, mode, filename, value, expire_time - store_time"
    rows = batched.store._sql(f"SELECT {cols} FROM Cache ORDER BY key").fetchall()
    assert rows == by_set._sql(f"SELECT {cols} FROM Cache ORDER BY key").fetchall() and len(rows) == 50
    assert (len(batched.store), batched.store.volume()) == (len(by_set), by_set.volume())
    assert batched.store.check() == [] and batched.get(f"{3:064x}.0")["parts"] == [b"again"]
    by_set.close()
    # A value too big for the table goes to a file of its own, as diskcache writes it; replaced, the file goes.
    big = ResponseCache(CacheSettings(directory=tmp_path / "c"))
    big.store.reset("disk_min_file_size", 1024)
    big._write([("a.0", entry(0, b"x" * 4096)), ("b.0", entry(1))])
    assert big.get("a.0")["parts"] == [b"x" * 4096] and big.get("b.0")["parts"] == [b'{"n": 1}']
    assert big.store._sql("SELECT count(*) FROM Cache WHERE filename IS NOT NULL").fetchone()[0] == 1
    assert len([p for p in (tmp_path / "c").rglob("*.val")]) == 1 and big.store.check() == []
    big._write([("a.0", entry(2))])
    assert big.get("a.0")["parts"] == [b'{"n": 2}'] and not list((tmp_path / "c").rglob("*.val"))
    assert big.store.check() == [] and len(big.store) == 2
    batched.close()
    big.close()


@pytest.mark.parametrize("headers, sse", [
    ([("Content-Type", "text/event-stream; charset=utf-8"), ("X-Request-Id", "r")], True),
    ([("content-type", "application/json"), ("Content-Length", "2"), ("Set-Cookie", "a=b")], False),
    ([("CONTENT-TYPE", "text/event-stream"), ("content-type", "x/y")], True),
    ([("x-other", "text/event-stream")], False),
])
@pytest.mark.parametrize("key", [None, "cache-key"])
def test_a_response_is_read_by_its_content_type_and_only_a_cached_one_keeps_its_headers(headers, sse, key):
    import httpx

    from llmtrace.capture import call as call_module

    call = call_module.Call.__new__(call_module.Call)
    call.key, call.headers, call.status = key, [], None
    bodies: list = []
    call.body_done = lambda parts, error, exhausted: bodies.append(parts)  # type: ignore[method-assign]
    response = httpx.Response(200, headers=headers, content=b"{}")
    call.on_response(response)
    assert call.status == 200 and call.sse is sse and bodies == [[b"{}"]]
    kept = [[k, v] for k, v in response.headers.items() if k.lower() not in call_module._DROP_HEADERS]
    assert call.headers == (kept if key else [])
    assert (response.headers.get("content-type", "").startswith("text/event-stream")) is sse


@pytest.mark.parametrize("text", ['{"a": 1}', ' {"a": 1} ', '{"a":1}\n', "[1,2]", '"x"', "1", "NaN", "-Infinity", "1e400",
                                  "true", "hello", "", "  ", '{"a": 1} x', '{"a":', '{"a": "\\ud800"}', "\ud800"])
def test_json_is_parsed_as_json_loads_parses_it(text):
    """parse_json_maybe calls json's scanner itself: whatever the text, what json.loads makes of it (or the text)."""
    from llmtrace.capture.serialize import parse_json_maybe

    try:
        expected = json.loads(text)
    except ValueError:
        expected = text
    assert repr(parse_json_maybe(text)) == repr(expected)


def _raised(fn):
    try:
        fn()
    except Exception as e:
        return e
    raise AssertionError("did not raise")


def test_flat_prices_are_remembered_so_later_runs_need_not_import_genai_prices(llmtrace_home):
    import subprocess
    import sys

    code = ("import sys; from llmtrace import pricing; "
            "print(pricing.cost('gpt-4o-mini-2024-07-18', 'openai', 1234, 56, 100), "
            "pricing.cost('gemini-2.5-pro', 'google', 300000, 10, 0) is not None, 'genai_prices' in sys.modules)")

    def run():
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
        return float(out[0]), out[1], out[2]

    first = run()
    tables = json.loads((llmtrace_home / "price-units.json").read_text())["tables"]
    assert [list(t["models"]) for t in tables.values()] == [["openai/gpt-4o-mini-2024-07-18"]]  # the tiered model is not kept
    from genai_prices import Usage, calc_price

    exact = float(calc_price(Usage(input_tokens=1234, output_tokens=56, cache_read_tokens=100), "gpt-4o-mini-2024-07-18",
                             provider_id="openai").total_price)
    assert first[0] == pytest.approx(exact, rel=1e-12) and first[1] == "True"
    code = code.replace(", pricing.cost('gemini-2.5-pro', 'google', 300000, 10, 0) is not None", ", True")
    second = run()
    assert second == (first[0], "True", "False")  # same price, genai-prices never imported


def test_remembered_prices_last_as_long_as_the_price_data_says(llmtrace_home, monkeypatch):
    """gpt-4o-mini has one price: its numbers are used on any later day. o3's price changed on a date
    (genai-prices: prices with a start date): its numbers are kept with the UTC day they were learnt
    on and used that day only. deepseek-chat has off-peak hours: never kept."""
    from genai_prices import Usage, calc_price

    from llmtrace import pricing

    monkeypatch.setattr(pricing, "_utc_day", lambda: "2031-05-06")
    try:
        pricing._units.cache_clear()
        pricing._genai_price.cache_clear()
        cases = (("gpt-4o-mini", "openai"), ("o3", "openai"), ("deepseek-chat", "deepseek"))
        got = {model: pricing.cost(model, provider, 1000, 100, 0) for model, provider in cases}
        for model, provider in cases:
            assert got[model] == pytest.approx(float(calc_price(Usage(input_tokens=1000, output_tokens=100), model,
                                                                provider_id=provider).total_price), rel=1e-12)
        table, = (t["models"] for t in json.loads((llmtrace_home / "price-units.json").read_text())["tables"].values())
        assert list(table) == ["openai/gpt-4o-mini", "openai/o3"]
        assert len(table["openai/gpt-4o-mini"]) == 3 and table["openai/o3"][3] == "2031-05-06"
        for key in table:
            pricing._units()["models"][key][:3] = [0.0, 0.0, 0.0]  # so a use of the kept numbers shows
        pricing._genai_price.cache_clear()
        assert pricing.cost("o3", "openai", 1000, 100, 0) == 0.0  # same day: the kept numbers
        monkeypatch.setattr(pricing, "_utc_day", lambda: "2031-05-07")
        assert pricing.cost("gpt-4o-mini", "openai", 1000, 100, 0) == 0.0  # any day
        assert pricing.cost("o3", "openai", 1000, 100, 0) == got["o3"]  # next day: asked of genai-prices again
    finally:
        pricing._units.cache_clear()
        pricing._genai_price.cache_clear()


def test_remembered_prices_of_other_genai_prices_data_are_kept_beside_ours(llmtrace_home, monkeypatch):
    """Virtualenvs with different genai-prices data share the cache folder: each keeps a table of its
    own in price-units.json (the last four learnt), so they do not throw each other's numbers away."""
    from llmtrace import pricing

    def learn(stamp, model="gpt-4o-mini"):
        monkeypatch.setattr(pricing, "_data_stamp", lambda: stamp)
        pricing._units.cache_clear()
        pricing._genai_price.cache_clear()
        assert pricing.cost(model, "openai", 1000, 100, 0) is not None

    def tables():
        return {k: list(t["models"]) for k, t in json.loads((llmtrace_home / "price-units.json").read_text())["tables"].items()}

    try:
        learn("data-a")
        learn("data-b", "gpt-4o")
        assert tables() == {"data-a": ["openai/gpt-4o-mini"], "data-b": ["openai/gpt-4o"]}
        monkeypatch.setattr(pricing, "_data_stamp", lambda: "data-a")
        pricing._units.cache_clear()
        assert list(pricing._units()["models"]) == ["openai/gpt-4o-mini"]  # the first one's table survived
        for stamp in ("data-c", "data-d", "data-e"):
            learn(stamp)
        assert list(tables()) == ["data-b", "data-c", "data-d", "data-e"]  # the four learnt last
    finally:
        pricing._units.cache_clear()
        pricing._genai_price.cache_clear()


def test_spans_are_written_a_statement_per_32_rows_not_one_per_row(tmp_path):
    """A batch of 70 spans (with payloads) takes 4 statements a table, each one SQLite step: a writer
    thread lets go of the GIL once a statement, not once a row. Every row, payload and search entry lands."""
    w = _writer(tmp_path)
    trace = Trace(id="t-batch", name="t", start_us=1)
    w.start_trace(trace)
    spans = [Span(id=f"s{i:03d}", trace_id=trace.id, parent_id=None, kind="llm", name="ChatOpenAI", start_us=10 + i,
                  end_us=20 + i, status="ok", inputs={"messages": [{"role": "user", "content": f"needle{i}"}]},
                  request={"n": i}, response={"answer": i}) for i in range(70)]
    statements: list[str] = []
    w.db.set_trace_callback(statements.append)
    w.write_spans(spans)
    w.db.set_trace_callback(None)
    # The trace callback repeats a statement each time one of its triggers runs: distinct texts count.
    inserts = {s for s in statements if s.startswith(("INSERT OR REPLACE INTO spans", "INSERT OR REPLACE INTO payloads"))}
    assert len(inserts) == 8, len(inserts)  # 32 + 32 + 4 + 2 rows a table
    assert w.db.execute("SELECT count(*) FROM spans WHERE trace_id = 't-batch'").fetchone()[0] == 70
    assert [json.loads(r[0]) for r in w.db.execute("SELECT response FROM payloads ORDER BY span_id")] == [{"answer": i} for i in range(70)]
    assert w.db.execute("SELECT s.id FROM span_text JOIN spans s ON s.rowid = span_text.rowid WHERE span_text MATCH 'needle69'").fetchall() == [("s069",)]


@pytest.mark.parametrize("xdg", [None, "", "/some/where"])
def test_default_folders_are_platformdirs_ones(monkeypatch, xdg):
    """home.user_dir spares a run the import of platformdirs; it must name the same folders."""
    import platformdirs

    from llmtrace.home import home, user_dir

    monkeypatch.delenv("LLMTRACE_HOME", raising=False)
    for var in ("XDG_DATA_HOME", "XDG_CACHE_HOME"):
        if xdg is None:
            monkeypatch.delenv(var, raising=False)
        else:
            monkeypatch.setenv(var, xdg)
    assert home() == Path(platformdirs.user_data_dir("llmtrace", appauthor=False))
    assert user_dir("cache") / "llmtrace" == Path(platformdirs.user_cache_dir("llmtrace", appauthor=False))


def test_a_started_span_holds_each_argument_in_its_own_field():
    """Recorder.start_span: each value lands in the field of its name, the rest keep their defaults."""
    import dataclasses

    from llmtrace.core.recorder import Recorder

    rec = Recorder(Trace(id="t", name="t", start_us=1), [])
    given = {"span_id": "s", "kind": "llm", "name": "n", "parent_id": "p", "inputs": object(), "tags": ["x"],
             "metadata": {"m": 1}, "model_requested": "gpt", "provider": "openai"}
    span = rec.start_span(**given)
    fields = {"id": "s", "trace_id": "t", **{k: v for k, v in given.items() if k != "span_id"}}
    defaults = Span(id="s", trace_id="t", parent_id="p", kind="llm", name="n", start_us=span.start_us)
    for f in dataclasses.fields(Span):
        expected = fields[f.name] if f.name in fields else getattr(defaults, f.name)
        assert getattr(span, f.name) == expected, f.name
    assert span.inputs is given["inputs"] and span.start_us > 0 and rec.get_open("s") is span


def test_run_ids_kept_as_text_are_what_str_makes_of_them():
    """The handler writes a run id as text itself (str(UUID) costs its method calls) and keeps it by the
    UUID's integer: the text must be str()'s, found again by the same or an equal UUID, and any other
    kind of id kept as it is."""
    from langchain_core.utils.uuid import uuid7

    from llmtrace.capture.handler import _TEXT_IDS, _forget, _remember, _sid

    for run_id in [uuid.uuid4(), uuid7(), uuid.UUID(int=0), uuid.UUID(int=2 ** 128 - 1), "not-a-uuid"]:
        text = _remember(run_id)
        assert text == str(run_id)
        twin = uuid.UUID(str(run_id)) if isinstance(run_id, uuid.UUID) else run_id
        assert _sid(twin) == text and _sid(run_id) == text
        assert _forget(twin) == text and not _TEXT_IDS
        assert _sid(run_id) == text  # once forgotten, made again
    assert _sid(None) is None


def test_model_equality_is_field_by_field():
    from llmtrace.model import Feedback, Span, Totals, Trace

    assert Trace("a", "n", 1) == Trace("a", "n", 1) and Trace("a", "n", 1) != Trace("a", "n", 2)
    assert Totals(llm_calls=2) == Totals(llm_calls=2) != Totals(llm_calls=3)
    assert Feedback(1, None, 5) == Feedback(1, None, 5) != Feedback(1, "x", 5)
    assert Span("s", "t", None, "llm", "n", 0) != Span("s", "t", None, "llm", "n", 0, model="m")
    assert Trace("a", "n", 1) != ("a", "n", 1)
    with pytest.raises(TypeError):
        hash(Totals())  # unhashable, as a dataclass with eq is


def test_import_hooks_fire_once_after_the_module_runs_and_add_no_meta_path_finder(tmp_path, monkeypatch):
    """`hooks.when_imported` calls back once the watched module has run, whether its package's
    directory was seen before the watch began or not; no meta-path finder is added (one would be
    asked about every import the script makes)."""
    import importlib
    import sys

    from llmtrace.capture import hooks

    for pkg in ("hookpkg_a", "hookpkg_b"):
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
        (tmp_path / pkg / "_base_client.py").write_text("RAN = True\n")
        (tmp_path / pkg / "other.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    meta_path = list(sys.meta_path)
    importlib.import_module("hookpkg_b.other")  # hookpkg_b's directory has its finder before the watch
    seen: list = []
    try:
        for pkg in ("hookpkg_a", "hookpkg_b"):
            hooks.when_imported(f"{pkg}._base_client", lambda m: seen.append((m.__name__, m.RAN)))
        assert seen == [] and sys.meta_path == meta_path
        importlib.import_module("hookpkg_a.other")
        assert seen == []
        importlib.import_module("hookpkg_a._base_client")
        importlib.import_module("hookpkg_b._base_client")
        assert seen == [("hookpkg_a._base_client", True), ("hookpkg_b._base_client", True)]
        hooks.when_imported("hookpkg_a._base_client", lambda m: seen.append("at once"))  # already imported
        assert seen[-1] == "at once" and len(seen) == 3
    finally:
        for name in [n for n in sys.modules if n.startswith("hookpkg_")]:
            del sys.modules[name]
