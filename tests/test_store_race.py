"""Several processes making the same new store at once: each gets a working store, made exactly once.

Two connections switching a new file to WAL at once made SQLite answer one of them "database is locked"
at once (no busy wait): two `llmtrace run`s started together on a fresh machine failed about half the
time. These tests do not hope for an overlap: the first process stops in the middle of making the
store and is let go only once the second is seen waiting for it.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmtrace.store.schema import MIGRATIONS
from conftest import HANG, ROOT

# A child process: opens the store at argv[1]; with argv[2] == "first", stops at the named step of making
# it (argv[3]), says so with the file argv[4], and goes on once the file argv[5] exists; with argv[2] ==
# "second", says with the file argv[3] that it has found the store being made and is waiting for it;
# otherwise says with the file argv[3] that it is ready.
# Every opener, before opening, waits for the file argv[-1] (a common start line).
_CHILD = r"""
import os, sys, time
from pathlib import Path
from llmtrace.store import db as dbm, open_store

def wait_for(path):
    while not os.path.exists(path):  # the test's own guard (HANG) ends a child that waits for ever
        time.sleep(0.005)

def touch(path):
    Path(path).write_text("")

role, start = sys.argv[2], sys.argv[-1]
if role == "first":
    step, stopped, go = sys.argv[3], sys.argv[4], sys.argv[5]
    real = getattr(dbm, step)
    def paused(*args, **kwargs):
        if step == "_use_wal":  # before the switch: the file is still new and empty
            touch(stopped); wait_for(go)
            return real(*args, **kwargs)
        out = real(*args, **kwargs)  # in the migrations' transaction, the tables made but not committed
        touch(stopped); wait_for(go)
        return out
    setattr(dbm, step, paused)
elif role == "second":
    dbm._waiting_for_setup = lambda path: touch(sys.argv[3])
else:  # one of many: says it is ready (imports done), then all start at once
    touch(sys.argv[3])
wait_for(start)
db = open_store(Path(sys.argv[1]))
print(db.execute("PRAGMA user_version").fetchone()[0], db.execute("PRAGMA journal_mode").fetchone()[0])
db.close()
"""


def _opener(store: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", _CHILD, str(store), *args], env=env, cwd=str(ROOT),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_file(path: Path, *alive: subprocess.Popen) -> bool:
    """True once `path` exists; False as soon as one of `alive` has exited without making it."""
    deadline = time.monotonic() + HANG
    while time.monotonic() < deadline:
        if path.exists():
            return True
        if any(p.poll() is not None for p in alive):
            return path.exists()
        time.sleep(0.005)
    raise AssertionError(f"{path.name} never appeared")


def _assert_made_once(store: Path) -> None:
    db = sqlite3.connect(str(store))
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        names = [r[0] for r in db.execute("SELECT name FROM schema_migrations ORDER BY name")]
        assert names == sorted(name for name, _ in MIGRATIONS)
        assert db.execute("SELECT count(*) FROM traces").fetchone()[0] == 0
    finally:
        db.close()


@pytest.mark.parametrize("step", ["_use_wal", "_create_fresh"])
def test_a_second_process_opening_a_store_being_made_waits_for_it(tmp_path, step):
    """The first opener stops before the WAL switch, or inside the migrations' transaction; the second
    opens the store then, and must wait for the first (not fail, not make the store a second time)."""
    store, start = tmp_path / "home" / "traces.db", tmp_path / "start"
    stopped, go, waiting = tmp_path / "first-stopped", tmp_path / "first-go", tmp_path / "second-waiting"
    start.write_text("")
    first = _opener(store, "first", step, str(stopped), str(go), str(start))
    second = None
    try:
        assert _wait_for_file(stopped, first), first.communicate()[1]
        second = _opener(store, "second", str(waiting), str(start))
        found_waiting = _wait_for_file(waiting, second)
        go.write_text("")
        out1, err1 = first.communicate(timeout=HANG)
        out2, err2 = second.communicate(timeout=HANG)
    finally:
        for p in (first, second):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    assert first.returncode == 0, err1
    assert second.returncode == 0, err2
    assert found_waiting, "the second opener did not wait for the store being made"
    assert out1.split() == out2.split() == [str(len(MIGRATIONS)), "wal"]
    _assert_made_once(store)


def _older_store(store: Path, version: int) -> None:
    """A store as an llmtrace that knew only the first `version` migrations left it (rollback journal)."""
    store.parent.mkdir(mode=0o700)
    db = sqlite3.connect(str(store), isolation_level=None)
    db.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_us INTEGER NOT NULL)")
    for name, fn in MIGRATIONS[:version]:
        fn(db)
        db.execute("INSERT INTO schema_migrations VALUES (?, 0)", (name,))
    db.execute(f"PRAGMA user_version = {version}")
    db.close()


@pytest.mark.parametrize("older", [None, 2], ids=["new store", "store at schema 2"])
def test_many_first_openers_at_once_all_get_the_store(tmp_path, older):
    store, start = tmp_path / "home" / "traces.db", tmp_path / "start"
    if older:
        _older_store(store, older)
    openers = [_opener(store, "any", str(tmp_path / f"ready-{i}"), str(start)) for i in range(8)]
    try:
        for i, p in enumerate(openers):
            assert _wait_for_file(tmp_path / f"ready-{i}", p), p.communicate()[1]
        start.write_text("")  # every child has imported llmtrace and waits for this line: they open together
        results = [p.communicate(timeout=HANG) for p in openers]
    finally:
        for p in openers:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (out, err) in zip(openers, results):
        assert p.returncode == 0, err
        assert out.split() == [str(len(MIGRATIONS)), "wal"]
    _assert_made_once(store)
    assert (store.parent / "traces.db.lock").stat().st_mode & 0o077 == 0
