"""Numbered schema migrations. Each runs in its own transaction; the applied set is recorded."""

from __future__ import annotations

import sqlite3
from typing import Callable

# Column lists shared by the writer and the queries (the current schema's, in table order).
SPAN_COLUMNS = (
    "id", "trace_id", "parent_id", "kind", "name", "start_us", "end_us", "status", "error_type", "error_message",
    "inputs", "outputs", "tags", "metadata", "model_requested", "model", "provider", "input_tokens", "output_tokens",
    "cached_tokens", "reasoning_tokens", "finish_reason", "tool_calls", "first_token_us", "cost", "streamed",
    "cache_hit", "cost_saved", "attempts",
)
JSON_SPAN_COLUMNS = frozenset({"inputs", "outputs", "tags", "metadata", "tool_calls"})
TOTAL_COLUMNS = (
    "llm_calls", "tool_calls", "input_tokens", "output_tokens", "cached_tokens", "cost", "unpriced_calls", "errors",
    "cache_hits", "cost_saved", "retries",
)

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[tuple[str, Migration]] = []


def migration(fn: Migration) -> Migration:
    name = fn.__name__
    if any(n == name for n, _ in MIGRATIONS):
        raise RuntimeError(f"duplicate migration name {name}")
    MIGRATIONS.append((name, fn))
    return fn


# Statements that a migration and the fresh schema (below) both make.
_SPAN_TOTALS = """CREATE VIEW span_totals AS
           SELECT trace_id,
                  SUM(kind = 'llm') AS llm_calls,
                  SUM(kind = 'tool') AS tool_calls,
                  COALESCE(SUM(input_tokens), 0) AS input_tokens,
                  COALESCE(SUM(output_tokens), 0) AS output_tokens,
                  COALESCE(SUM(cached_tokens), 0) AS cached_tokens,
                  COALESCE(SUM(cost), 0) AS cost,
                  SUM(kind = 'llm' AND cost IS NULL AND status != 'error' AND cache_hit IS NULL) AS unpriced_calls,
                  SUM(status = 'error') AS errors,
                  SUM(cache_hit IS NOT NULL) AS cache_hits,
                  COALESCE(SUM(cost_saved), 0) AS cost_saved,
                  COALESCE(SUM(MAX(COALESCE(attempts, 1), 1) - 1), 0) AS retries
           FROM spans GROUP BY trace_id"""
_SPANS_LLM_COST = """CREATE INDEX spans_llm_cost ON spans(start_us, model, model_requested, trace_id, input_tokens,
             output_tokens, cost, cache_hit, cost_saved, status, streamed, first_token_us) WHERE kind = 'llm'"""


_TEXT_COLS = "name, inputs, outputs, error_message"
_NEW = ", ".join(f"new.{c.strip()}" for c in _TEXT_COLS.split(","))
_OLD = ", ".join(f"old.{c.strip()}" for c in _TEXT_COLS.split(","))
_SPAN_TEXT = (
    f"CREATE VIRTUAL TABLE span_text USING fts5({_TEXT_COLS}, content='spans', content_rowid='rowid')",
    f"CREATE TRIGGER span_text_ai AFTER INSERT ON spans BEGIN "
    f"INSERT INTO span_text(rowid, {_TEXT_COLS}) VALUES (new.rowid, {_NEW}); END",
    f"CREATE TRIGGER span_text_ad AFTER DELETE ON spans BEGIN "
    f"INSERT INTO span_text(span_text, rowid, {_TEXT_COLS}) VALUES ('delete', old.rowid, {_OLD}); END",
    f"CREATE TRIGGER span_text_au AFTER UPDATE ON spans BEGIN "
    f"INSERT INTO span_text(span_text, rowid, {_TEXT_COLS}) VALUES ('delete', old.rowid, {_OLD}); "
    f"INSERT INTO span_text(rowid, {_TEXT_COLS}) VALUES (new.rowid, {_NEW}); END",
)


@migration
def m001_initial(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE traces (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            script TEXT,
            argv TEXT,
            cwd TEXT,
            start_us INTEGER NOT NULL,
            end_us INTEGER,
            status TEXT NOT NULL,
            exit_code INTEGER,
            error TEXT,
            pid INTEGER,
            version TEXT,
            llm_calls INTEGER NOT NULL DEFAULT 0,
            tool_calls INTEGER NOT NULL DEFAULT 0,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            cached_tokens INTEGER NOT NULL DEFAULT 0,
            cost REAL NOT NULL DEFAULT 0,
            unpriced_calls INTEGER NOT NULL DEFAULT 0,
            errors INTEGER NOT NULL DEFAULT 0
        )"""
    )
    db.execute("CREATE INDEX traces_start ON traces(start_us)")
    db.execute(
        """CREATE TABLE trace_tags (
            trace_id TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (trace_id, key)
        )"""
    )
    db.execute("CREATE INDEX trace_tags_kv ON trace_tags(key, value)")
    db.execute(
        """CREATE TABLE spans (
            id TEXT PRIMARY KEY,
            trace_id TEXT NOT NULL,
            parent_id TEXT,
            kind TEXT NOT NULL,
            name TEXT NOT NULL,
            start_us INTEGER NOT NULL,
            end_us INTEGER,
            status TEXT NOT NULL,
            error_type TEXT,
            error_message TEXT,
            inputs TEXT,
            outputs TEXT,
            tags TEXT,
            metadata TEXT,
            model_requested TEXT,
            model TEXT,
            provider TEXT,
            input_tokens INTEGER,
            output_tokens INTEGER,
            cached_tokens INTEGER,
            reasoning_tokens INTEGER,
            finish_reason TEXT,
            tool_calls TEXT,
            first_token_us INTEGER,
            cost REAL,
            streamed INTEGER NOT NULL DEFAULT 0
        )"""
    )
    db.execute("CREATE INDEX spans_trace ON spans(trace_id, start_us)")
    db.execute("CREATE INDEX spans_llm_start ON spans(start_us) WHERE kind = 'llm'")
    db.execute(
        """CREATE TABLE payloads (
            span_id TEXT PRIMARY KEY,
            request TEXT,
            response TEXT
        )"""
    )
    db.execute(
        """CREATE VIEW span_totals AS
           SELECT trace_id,
                  SUM(kind = 'llm') AS llm_calls,
                  SUM(kind = 'tool') AS tool_calls,
                  COALESCE(SUM(input_tokens), 0) AS input_tokens,
                  COALESCE(SUM(output_tokens), 0) AS output_tokens,
                  COALESCE(SUM(cached_tokens), 0) AS cached_tokens,
                  COALESCE(SUM(cost), 0) AS cost,
                  SUM(kind = 'llm' AND cost IS NULL AND status != 'error') AS unpriced_calls,
                  SUM(status = 'error') AS errors
           FROM spans GROUP BY trace_id"""
    )


@migration
def m002_cache_retries_feedback(db: sqlite3.Connection) -> None:
    for col in ("cache_hit TEXT", "cost_saved REAL", "attempts INTEGER"):
        db.execute(f"ALTER TABLE spans ADD COLUMN {col}")
    for col in ("cache_hits INTEGER NOT NULL DEFAULT 0", "cost_saved REAL NOT NULL DEFAULT 0",
                "retries INTEGER NOT NULL DEFAULT 0"):
        db.execute(f"ALTER TABLE traces ADD COLUMN {col}")
    db.execute(
        """CREATE TABLE feedback (
            id INTEGER PRIMARY KEY,
            trace_id TEXT NOT NULL,
            score INTEGER NOT NULL,
            comment TEXT,
            created_us INTEGER NOT NULL
        )"""
    )
    db.execute("CREATE INDEX feedback_trace ON feedback(trace_id)")
    db.execute("DROP VIEW span_totals")
    db.execute(_SPAN_TOTALS)


@migration
def m003_covering_cost_index(db: sqlite3.Connection) -> None:
    # `llmtrace cost` reads only these columns of LLM spans: an index holding them all answers it
    # without touching the table (0.7 s → 0.3 s over 400k LLM spans).
    db.execute("DROP INDEX IF EXISTS spans_llm_start")
    db.execute(
        """CREATE INDEX IF NOT EXISTS spans_llm_cost ON spans(start_us, model, model_requested, trace_id, input_tokens,
             output_tokens, cost, cache_hit, cost_saved, status) WHERE kind = 'llm'"""
    )


@migration
def m004_top_level_steps_index(db: sqlite3.Connection) -> None:
    # `show` folds long runs of top-level steps and counts them: an index of just those spans makes
    # the count of a 200,000-span trace ~5 ms instead of ~100 ms.
    db.execute("CREATE INDEX IF NOT EXISTS spans_steps ON spans(trace_id, start_us) WHERE parent_id IS NULL")


@migration
def m005_trace_traceback(db: sqlite3.Connection) -> None:
    # The script's uncaught exception with its stack (exported as the root span's `exception` event).
    db.execute("ALTER TABLE traces ADD COLUMN traceback TEXT")


@migration
def m006_span_text_search(db: sqlite3.Connection) -> None:
    # `ls --grep` / `show --grep`: a full-text index (FTS5) of what each span holds — prompts and
    # answers, tool arguments and results, errors. External content: the text is not stored twice;
    # triggers keep the index in step with every write path (runs, imports, recovery, rm, prune).
    # INSERT OR REPLACE fires the delete trigger only with recursive_triggers on (set by db._connect).
    try:
        db.execute(_SPAN_TEXT[0])
    except sqlite3.OperationalError as e:  # an SQLite built without FTS5: the store works, --grep says why not
        if "fts5" in str(e):
            return
        raise
    for sql in _SPAN_TEXT[1:]:
        db.execute(sql)
    db.execute("INSERT INTO span_text(span_text) VALUES ('rebuild')")  # the spans already stored


@migration
def m007_split_runs(db: sqlite3.Connection) -> None:
    # `run --split`: each top-level invocation is a trace of its own; they share the run's id, which
    # is also the id of the run's own record (script, argv, exit status, the script's traceback).
    db.execute("ALTER TABLE traces ADD COLUMN run_id TEXT")
    db.execute("CREATE INDEX IF NOT EXISTS traces_run ON traces(run_id, start_us) WHERE run_id IS NOT NULL")
    # `cost` also gives the streamed calls' time to first token: the covering index holds those columns too.
    db.execute("DROP INDEX IF EXISTS spans_llm_cost")
    db.execute(_SPANS_LLM_COST)


# --- a new store in one step --------------------------------------------------------------------------
# What MIGRATIONS[:FRESH_VERSION] make of an empty store, written as it stands: a new store is made
# from these statements (in the transaction the migrations would use) instead of replaying each
# migration, whose ALTER TABLEs make SQLite re-read the schema every time (~15 M instructions of a
# first run's start; these ~6 M). tests/test_units.py holds both ways to the same tables, columns,
# indexes, view and triggers. A new migration goes into MIGRATIONS as before; until it is written in
# here too (and FRESH_VERSION raised), a new store gets it by replaying it after these.
FRESH_VERSION = 7
FRESH_SCHEMA = (
    """CREATE TABLE traces (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        script TEXT,
        argv TEXT,
        cwd TEXT,
        start_us INTEGER NOT NULL,
        end_us INTEGER,
        status TEXT NOT NULL,
        exit_code INTEGER,
        error TEXT,
        pid INTEGER,
        version TEXT,
        llm_calls INTEGER NOT NULL DEFAULT 0,
        tool_calls INTEGER NOT NULL DEFAULT 0,
        input_tokens INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        cached_tokens INTEGER NOT NULL DEFAULT 0,
        cost REAL NOT NULL DEFAULT 0,
        unpriced_calls INTEGER NOT NULL DEFAULT 0,
        errors INTEGER NOT NULL DEFAULT 0,
        cache_hits INTEGER NOT NULL DEFAULT 0,
        cost_saved REAL NOT NULL DEFAULT 0,
        retries INTEGER NOT NULL DEFAULT 0,
        traceback TEXT,
        run_id TEXT
    )""",
    "CREATE INDEX traces_start ON traces(start_us)",
    """CREATE TABLE trace_tags (
        trace_id TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (trace_id, key)
    )""",
    "CREATE INDEX trace_tags_kv ON trace_tags(key, value)",
    """CREATE TABLE spans (
        id TEXT PRIMARY KEY,
        trace_id TEXT NOT NULL,
        parent_id TEXT,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        start_us INTEGER NOT NULL,
        end_us INTEGER,
        status TEXT NOT NULL,
        error_type TEXT,
        error_message TEXT,
        inputs TEXT,
        outputs TEXT,
        tags TEXT,
        metadata TEXT,
        model_requested TEXT,
        model TEXT,
        provider TEXT,
        input_tokens INTEGER,
        output_tokens INTEGER,
        cached_tokens INTEGER,
        reasoning_tokens INTEGER,
        finish_reason TEXT,
        tool_calls TEXT,
        first_token_us INTEGER,
        cost REAL,
        streamed INTEGER NOT NULL DEFAULT 0,
        cache_hit TEXT,
        cost_saved REAL,
        attempts INTEGER
    )""",
    "CREATE INDEX spans_trace ON spans(trace_id, start_us)",
    "CREATE INDEX spans_steps ON spans(trace_id, start_us) WHERE parent_id IS NULL",
    _SPANS_LLM_COST,
    """CREATE TABLE payloads (
        span_id TEXT PRIMARY KEY,
        request TEXT,
        response TEXT
    )""",
    """CREATE TABLE feedback (
        id INTEGER PRIMARY KEY,
        trace_id TEXT NOT NULL,
        score INTEGER NOT NULL,
        comment TEXT,
        created_us INTEGER NOT NULL
    )""",
    "CREATE INDEX feedback_trace ON feedback(trace_id)",
    _SPAN_TOTALS,
    "CREATE INDEX traces_run ON traces(run_id, start_us) WHERE run_id IS NOT NULL",
    *_SPAN_TEXT,
)
