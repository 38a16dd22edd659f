"""Changes made after a run: tags, feedback, deleting and pruning traces."""

from __future__ import annotations

import sqlite3
import time

from llmtrace.errors import UserError
from llmtrace.store.db import transaction


def add_tags(db: sqlite3.Connection, trace_id: str, tags: dict[str, str]) -> None:
    with transaction(db):
        db.executemany(
            "INSERT OR REPLACE INTO trace_tags (trace_id, key, value) VALUES (?, ?, ?)",
            [(trace_id, k, v) for k, v in tags.items()],
        )


def remove_tags(db: sqlite3.Connection, trace_id: str, keys: list[str]) -> int:
    with transaction(db):
        return sum(db.execute("DELETE FROM trace_tags WHERE trace_id = ? AND key = ?", (trace_id, k)).rowcount for k in keys)


def add_feedback(db: sqlite3.Connection, trace_id: str, score: int, comment: str | None) -> None:
    if not -10 <= score <= 10:
        raise UserError(f"bad --score {score}: must be between -10 and 10")
    with transaction(db):
        db.execute(
            "INSERT INTO feedback (trace_id, score, comment, created_us) VALUES (?, ?, ?, ?)",
            (trace_id, score, comment, time.time_ns() // 1000),
        )


def _delete(db: sqlite3.Connection, where: str, args: tuple) -> int:
    ids = f"SELECT id FROM traces WHERE {where}"
    with transaction(db):
        db.execute(f"DELETE FROM payloads WHERE span_id IN (SELECT id FROM spans WHERE trace_id IN ({ids}))", args)
        db.execute(f"DELETE FROM spans WHERE trace_id IN ({ids})", args)
        db.execute(f"DELETE FROM trace_tags WHERE trace_id IN ({ids})", args)
        db.execute(f"DELETE FROM feedback WHERE trace_id IN ({ids})", args)
        return db.execute(f"DELETE FROM traces WHERE {where}", args).rowcount


def delete_traces(db: sqlite3.Connection, trace_ids: list[str]) -> int:
    marks = ",".join("?" * len(trace_ids))
    return _delete(db, f"id IN ({marks})", tuple(trace_ids))


def _dead_running(db: sqlite3.Connection, before_us: int) -> list[str]:
    """Traces that still say running but whose process is gone (shown as killed)."""
    from llmtrace.store.queries import pid_alive

    rows = db.execute("SELECT id, pid FROM traces WHERE start_us < ? AND status = 'running'", (before_us,))
    return [tid for tid, pid in rows if not pid_alive(pid)]


def count_older(db: sqlite3.Connection, before_us: int) -> int:
    finished = db.execute("SELECT count(*) FROM traces WHERE start_us < ? AND status != 'running'", (before_us,)).fetchone()[0]
    return finished + len(_dead_running(db, before_us))


def prune(db: sqlite3.Connection, before_us: int) -> int:
    """Delete traces started before the cut-off, except those whose process is still running."""
    killed = _dead_running(db, before_us)
    return _delete(db, "start_us < ? AND status != 'running'", (before_us,)) + (delete_traces(db, killed) if killed else 0)
