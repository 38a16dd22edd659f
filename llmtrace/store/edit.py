"""Changes made after a run: tags, feedback, deleting and pruning traces."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Callable

from llmtrace.errors import UserError
from llmtrace.store.db import in_lists, transaction


def retag(db: sqlite3.Connection, trace_id: str, add: dict[str, str], remove: list[str]) -> None:
    """Set `add` and remove the keys in `remove`, in one transaction: a key to remove that the trace
    does not have is an error, and then nothing changes."""
    with transaction(db):
        for key in remove:
            if db.execute("SELECT 1 FROM trace_tags WHERE trace_id = ? AND key = ?", (trace_id, key)).fetchone() is None:
                raise UserError(f"no tag {key} on trace {trace_id.replace('-', '')[:8]}")
        db.executemany(
            "INSERT OR REPLACE INTO trace_tags (trace_id, key, value) VALUES (?, ?, ?)",
            [(trace_id, k, v) for k, v in add.items()],
        )
        db.executemany("DELETE FROM trace_tags WHERE trace_id = ? AND key = ?", [(trace_id, k) for k in remove])


def add_feedback(db: sqlite3.Connection, trace_id: str, score: int, comment: str | None) -> None:
    if not -10 <= score <= 10:
        raise UserError(f"bad --score {score}: must be between -10 and 10")
    with transaction(db):
        db.execute(
            "INSERT INTO feedback (trace_id, score, comment, created_us) VALUES (?, ?, ?, ?)",
            (trace_id, score, comment, time.time_ns() // 1000),
        )


def _delete(db: sqlite3.Connection, where: str, args: tuple, check: Callable[[], None] | None = None) -> int:
    ids = f"SELECT id FROM traces WHERE {where}"
    with transaction(db):
        if check is not None:  # in the deleting transaction: no run starts or ends between the two
            check()
        db.execute(f"DELETE FROM payloads WHERE span_id IN (SELECT id FROM spans WHERE trace_id IN ({ids}))", args)
        db.execute(f"DELETE FROM spans WHERE trace_id IN ({ids})", args)
        db.execute(f"DELETE FROM trace_tags WHERE trace_id IN ({ids})", args)
        db.execute(f"DELETE FROM feedback WHERE trace_id IN ({ids})", args)
        return db.execute(f"DELETE FROM traces WHERE {where}", args).rowcount


def delete_traces(db: sqlite3.Connection, trace_ids: list[str]) -> int:
    """Delete these traces; refused (UserError, nothing deleted) when one of them is still being
    recorded. A live run goes on writing its spans whatever the store says: deleted under it, its
    later spans would land under a trace no command can show or delete."""
    marks = ",".join("?" * len(trace_ids))
    return _delete(db, f"id IN ({marks})", tuple(trace_ids), check=lambda: _refuse_running(db, trace_ids))


def _refuse_running(db: sqlite3.Connection, trace_ids: list[str]) -> None:
    """UserError when a trace's run is alive: its own record running with a live process, or (a
    `run --split` trace) its run's record, which goes on moving spans into its traces until it ends."""
    from llmtrace.store.procs import pid_alive

    marks = ",".join("?" * len(trace_ids))
    rows = db.execute(
        f"""SELECT t.id, r.pid FROM traces t JOIN traces r ON r.id = coalesce(t.run_id, t.id)
            WHERE t.id IN ({marks}) AND r.status = 'running'""",
        trace_ids,
    ).fetchall()
    for tid, pid in rows:
        if pid_alive(pid):
            raise UserError(f"trace {tid.replace('-', '')[:8]} is still being recorded (pid {pid}): "
                            "stop its run first (Ctrl-C, or kill it), then rm it")


def _dead_running(db: sqlite3.Connection, before_us: int) -> list[str]:
    """Traces that still say running but whose process is gone (shown as killed)."""
    from llmtrace.store.procs import pid_alive

    rows = db.execute("SELECT id, pid FROM traces WHERE start_us < ? AND status = 'running'", (before_us,))
    return [tid for tid, pid in rows if not pid_alive(pid)]


@dataclass
class PruneCount:
    """What `prune` would delete: traces, their spans, and when the oldest and the newest of them started."""

    traces: int
    spans: int
    oldest_us: int | None
    newest_us: int | None


def count_prunable(db: sqlite3.Connection, before_us: int) -> PruneCount:
    """The traces prune(db, before_us) deletes (finished ones and dead running ones), counted in SQL."""
    finished = "SELECT id FROM traces WHERE start_us < ? AND status != 'running'"
    n, oldest, newest = db.execute(
        "SELECT count(*), min(start_us), max(start_us) FROM traces WHERE start_us < ? AND status != 'running'", (before_us,)
    ).fetchone()
    spans = db.execute(f"SELECT count(*) FROM spans WHERE trace_id IN ({finished})", (before_us,)).fetchone()[0]
    killed = _dead_running(db, before_us)
    for chunk, marks in in_lists(killed):
        k_oldest, k_newest = db.execute(f"SELECT min(start_us), max(start_us) FROM traces WHERE id IN ({marks})", chunk).fetchone()
        spans += db.execute(f"SELECT count(*) FROM spans WHERE trace_id IN ({marks})", chunk).fetchone()[0]
        oldest = k_oldest if oldest is None else min(oldest, k_oldest)
        newest = k_newest if newest is None else max(newest, k_newest)
    return PruneCount(n + len(killed), spans, oldest, newest)


def prune(db: sqlite3.Connection, before_us: int) -> int:
    """Delete traces started before the cut-off, except those whose process is still running."""
    killed = _dead_running(db, before_us)
    return _delete(db, "start_us < ? AND status != 'running'", (before_us,)) + (delete_traces(db, killed) if killed else 0)
