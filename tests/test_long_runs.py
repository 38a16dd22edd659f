"""Long runs: memory stays flat and the spool does not pile up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from conftest import AGENTS, HANG, last_trace, run_cli, server_env

from llmtrace.model import Span, Trace
from llmtrace.redact import Redactor
from llmtrace.store import helper, open_store
from llmtrace.store import spool as spool_mod
from llmtrace.store.writer import StoreWriter


def _write_spans(spool, trace_id: str, n: int, first: int = 0) -> None:
    for i in range(first, first + n):
        spool.write_span(Span(id=f"s{i:04d}", trace_id=trace_id, parent_id=None, kind="llm", name="x", start_us=i,
                              end_us=i + 1, status="ok", inputs={"prompt": "p" * 200}))


def _killed_trace_store(tmp_path, monkeypatch, trace_id: str):
    """A store holding a trace whose process is gone, small spool segments, and the spool's folder."""
    monkeypatch.setattr(spool_mod, "_SEGMENT_BYTES", 4096)
    home = tmp_path / "home"
    db = open_store(home / "traces.db")
    writer = StoreWriter(db, Redactor())
    writer.start_trace(Trace(id=trace_id, name="t", start_us=1, pid=2 ** 22 + 7))  # a pid no process has
    return home, db, writer, spool_mod.spool_dir(home)


def _short_run_with_an_answer(tmp_path, monkeypatch, trace_id: str):
    """A killed trace's store and a run of it with no helper yet (nor by time): three spans spooled,
    and one answer ("k1") its cache handed to the spool. Returns the store's parts, the cache, the spool."""
    from llmtrace.store.cache import CacheSettings, ResponseCache

    monkeypatch.setattr(helper, "_START_AFTER_S", 1e9)
    home, db, writer, directory = _killed_trace_store(tmp_path, monkeypatch, trace_id)
    cache = ResponseCache(CacheSettings(directory=tmp_path / "cache"))
    spool = helper.HelperSpoolingWriter(writer, directory, trace_id)
    cache.handoff = spool.answer_handoff(cache)
    _write_spans(spool, trace_id, 3)
    cache.set("k1", 200, [], [b"{}"], False)
    return home, db, writer, directory, cache, spool


@pytest.mark.parametrize("copier", ["thread", "process"])
def test_spool_segments_go_once_sqlite_has_their_rows(tmp_path, monkeypatch, copier):
    monkeypatch.setattr(spool_mod, "_SEGMENT_BYTES", 4096)
    home = tmp_path / "home"
    db = open_store(home / "traces.db")
    writer = StoreWriter(db, Redactor())
    writer.start_trace(Trace(id="t1", name="t", start_us=1, pid=1))
    directory = spool_mod.spool_dir(home)
    kind = spool_mod.SpoolingWriter if copier == "thread" else helper.HelperSpoolingWriter
    spool = kind(writer, directory, "t1")
    _write_spans(spool, "t1", 300)  # ~100 KB of rows: ~25 segments
    assert spool._segment > 10
    spool.close()  # every row committed, every segment handled
    assert db.execute("SELECT count(*) FROM spans").fetchone()[0] == 300
    assert list(directory.glob("t1*")) == []  # every segment removed once its rows were in SQLite


def test_killed_run_leaves_segments_that_are_recovered(tmp_path, monkeypatch):
    home, db, writer, directory = _killed_trace_store(tmp_path, monkeypatch, "t2")
    spool = spool_mod.SpoolingWriter(writer, directory, "t2")
    spool._queue.put(object())  # jam the writer thread: nothing reaches SQLite, as if killed
    _write_spans(spool, "t2", 100)
    assert len(list(directory.glob("t2*"))) > 3
    db.close()
    db2 = open_store(home / "traces.db")  # what the next command does
    assert db2.execute("SELECT count(*) FROM spans").fetchone()[0] == 100
    assert list(directory.glob("t2*")) == []


def test_a_killed_run_leaves_its_helper_nothing_to_lose(tmp_path, monkeypatch):
    """The program gone (its end of the socket closed, no word of the run's end): the helper stores
    what it was told of and stops; the next command loads whatever the spool still holds."""
    home, db, writer, directory = _killed_trace_store(tmp_path, monkeypatch, "t3")
    spool = helper.HelperSpoolingWriter(writer, directory, "t3")
    _write_spans(spool, "t3", 100)
    spool._sock.close()  # as a kill leaves it
    db.close()
    db2 = open_store(home / "traces.db")  # what the next command does
    assert db2.execute("SELECT count(*) FROM spans").fetchone()[0] == 100
    assert list(directory.glob("t3*")) == []


def test_a_short_run_stores_its_spool_itself_and_a_longer_one_starts_the_helper(tmp_path, monkeypatch):
    """Under 16 records (and, here, never by time), no helper process: the run's end stores the spans
    and the cached answers itself. The 16th record starts the helper."""
    from llmtrace.store.cache import CacheSettings, ResponseCache

    _, db, writer, directory, cache, short = _short_run_with_an_answer(tmp_path, monkeypatch, "t4")
    short.close()
    assert short._sock is None
    assert db.execute("SELECT count(*) FROM spans").fetchone()[0] == 3
    cache.close()
    assert ResponseCache(CacheSettings(directory=tmp_path / "cache")).get("k1")["parts"] == [b"{}"]
    assert list(directory.glob("t4*")) == []

    longer = helper.HelperSpoolingWriter(writer, directory, "t5")
    _write_spans(longer, "t5", helper._START_AFTER_RECORDS - 1)
    assert longer._sock is None
    _write_spans(longer, "t5", 1, first=100)
    assert longer._sock is not None
    longer.close()
    assert db.execute("SELECT count(*) FROM spans WHERE trace_id = 't5'").fetchone()[0] == helper._START_AFTER_RECORDS
    assert list(directory.glob("t5*")) == []


def test_the_next_command_stores_a_killed_runs_answers_and_closes_only_the_caches_it_opened(tmp_path, monkeypatch):
    """A run killed before any helper leaves its answers in the spool; recovery (in `open_store`)
    writes them to their cache and closes the cache it opened for them, but not one that was open
    before (a run's own cache, adopted, which the run goes on using)."""
    from llmtrace.store import cache as cache_mod
    from llmtrace.store.cache import CacheSettings, ResponseCache

    monkeypatch.setattr(cache_mod, "_opened", {})
    home, db, _, directory, _, spool = _short_run_with_an_answer(tmp_path, monkeypatch, "t6")
    assert spool._sock is None and list(directory.glob("t6*"))  # no helper: all of it in the spool
    cache_mod._opened.clear()  # the killed process's, gone with it
    db.close()

    own = ResponseCache(CacheSettings(directory=tmp_path / "own-cache"))
    own.adopt()  # the next command is a run whose cache is open already
    opened: list[ResponseCache] = []
    from_place = ResponseCache.from_place.__func__
    monkeypatch.setattr(ResponseCache, "from_place",
                        classmethod(lambda cls, place: opened.append(from_place(cls, place)) or opened[-1]))
    closed: list[ResponseCache] = []
    close = ResponseCache.close
    monkeypatch.setattr(ResponseCache, "close", lambda self: (closed.append(self), close(self))[1])

    db2 = open_store(home / "traces.db")  # what the next command does
    assert db2.execute("SELECT count(*) FROM spans WHERE trace_id = 't6'").fetchone()[0] == 3
    assert len(opened) == 1 and closed == opened  # the cache opened for the answers, closed
    assert list(cache_mod._opened.values()) == [own]  # the run's own, still open
    assert own.get("k0") is None  # and usable
    again = ResponseCache(CacheSettings(directory=tmp_path / "cache"))
    assert again.get("k1")["parts"] == [b"{}"]
    again.close()
    own.close()
    assert list(directory.glob("t6*")) == []


def _count_notes(spool) -> list[bytes]:
    kinds, send = [], spool._send

    def counting(note, wait=False):
        kinds.append(note[:1])
        send(note, wait)

    spool._send = counting
    return kinds


def _stored_spans(db, trace_id: str, want: int) -> int:
    """The trace's spans in SQLite once the helper has stored `want` of them (or after HANG: fewer)."""
    deadline = time.monotonic() + HANG
    while True:
        n = db.execute("SELECT count(*) FROM spans WHERE trace_id = ?", (trace_id,)).fetchone()[0]
        if n >= want or time.monotonic() > deadline:
            return n
        time.sleep(0.02)


def test_once_the_publisher_ticks_only_ticks_tell_the_helper_where_the_spool_ends(tmp_path, monkeypatch):
    """Once the in-flight publisher ticks, the thread that spools a record makes no system call for it
    (in a server's request thread, each was a wait for the GIL): the next tick tells the helper where
    the spool ends. Without ticks, every record is told."""
    home, db, writer, directory = _killed_trace_store(tmp_path, monkeypatch, "t6")
    spool = helper.HelperSpoolingWriter(writer, directory, "t6")
    notes = _count_notes(spool)
    spool.tick()  # the publisher's first tick: nothing spooled yet, nothing told
    _write_spans(spool, "t6", 40)
    assert spool._sock is not None and notes == []  # the helper started at the 16th record; no record told it
    spool.tick()
    assert notes == [helper._AT] and _stored_spans(db, "t6", 40) == 40  # before the run's end
    spool.tick()
    assert len(notes) == 1  # nothing new: nothing told
    spool.close()
    assert db.execute("SELECT count(*) FROM spans WHERE trace_id = 't6'").fetchone()[0] == 40

    writer.start_trace(Trace(id="t7", name="t", start_us=1, pid=2 ** 22 + 7))
    spool = helper.HelperSpoolingWriter(writer, directory, "t7")  # no publisher ticking
    notes = _count_notes(spool)
    _write_spans(spool, "t7", 40)
    assert notes == [helper._AT] * (40 - helper._START_AFTER_RECORDS + 1)
    assert _stored_spans(db, "t7", 40) == 40
    spool.close()
    assert list(directory.glob("t[67]*")) == []


@pytest.mark.soak  # ~65 s of one worker: a step of its own (`pytest -m 'parity or soak'`), not the default run
def test_memory_stays_flat_over_a_long_loop(llmtrace_home, mock_server):
    """A leak of a hundred bytes a call shows: 3,000 recorded and cached calls after a warm-up."""
    server = mock_server({"replies": [{"content": "fine"}]})
    r = run_cli("run", "-q", str(AGENTS / "soak_loop.py"), "3000", "500", env=server_env(server), timeout=600)
    assert r.code == 0, r.stderr
    seen = json.loads(r.stdout.strip().splitlines()[-1])
    # Python objects: under 100 bytes a call (a leaked span, payload or id map entry is several KB).
    assert seen["heap_growth_bytes"] < 300_000, seen
    # Process memory (spool segments, SQLite caches, the writer's queue): bounded, not growing with
    # the calls; a leak of 2 KB a call (what an ever-growing spool cost) would cross it.
    assert seen["rss_growth_kb"] < 8 * 1024, seen
    assert server.stats.requests == 3500


def test_occurrence_counts_are_exact_and_compact():
    import random

    from llmtrace.capture.lookup import Occurrences

    counts = Occurrences()
    keys = [random.Random(7).getrandbits(64) for _ in range(1)] + [random.Random(i).getrandbits(64) for i in range(20_000)]
    assert [counts.next(k) for k in keys[1:]] == [0] * 20_000
    assert [counts.next(keys[5]) for _ in range(3)] == [1, 2, 3]  # the n-th ask of a key is answered n
    assert counts.next(keys[6]) == 1
    assert len(counts._slots) * 8 <= 20_000 * 32  # a few machine words a key, not a dict entry


def test_spans_are_stored_by_a_helper_process_the_script_cannot_see(llmtrace_home, mock_server):
    """The helper process does the SQLite work: the script has no writer thread, and no child process
    of its own (os.waitpid finds none, as under python)."""
    server = mock_server({"replies": [{"content": "fine"}]})
    r = run_cli("run", "-q", "--no-cache", str(AGENTS / "helper_gone.py"), "5", "0", "wait", env=server_env(server))
    assert r.code == 0, r.stderr
    seen = json.loads(r.stdout.strip().splitlines()[-1])
    assert seen["seen"] == 1  # started half a second after the first span
    plain = subprocess.run([sys.executable, str(AGENTS / "helper_gone.py"), "0"], capture_output=True, text=True,
                           env={**os.environ, **server_env(server)}, check=False)
    assert seen["waitpid"] == json.loads(plain.stdout)["waitpid"] == "ChildProcessError"
    assert "llmtrace-writer" not in seen["threads"]
    trace, spans = last_trace(llmtrace_home)
    assert trace.status == "ok" and len([s for s in spans if s.kind == "llm"]) == 5
    assert not list((llmtrace_home / "spool").iterdir())


def test_a_helper_that_dies_loses_no_span(llmtrace_home, mock_server):
    """Killed mid-run, the helper leaves the rest of the spool: the run's end stores it itself, spans
    and cached answers."""
    server = mock_server({"replies": [{"content": "fine"}]})
    r = run_cli("run", "-q", str(AGENTS / "helper_gone.py"), "8", "3", env=server_env(server))
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1])["killed"] == 1
    trace, spans = last_trace(llmtrace_home)
    llm = [s for s in spans if s.kind == "llm"]
    assert trace.status == "ok" and len(llm) == 8 and trace.totals.llm_calls == 8
    assert [s.inputs["messages"][0]["content"] for s in sorted(llm, key=lambda s: s.start_us)] == \
        [f"question {i}" for i in range(8)]
    assert not list((llmtrace_home / "spool").iterdir())
    again = run_cli("run", "-q", str(AGENTS / "helper_gone.py"), "8", env=server_env(server))
    assert again.code == 0 and server.stats.requests == 8  # every answer was cached: none asked again


@pytest.mark.parametrize("helper_started", [False, True])
def test_a_killed_runs_cached_answers_are_kept(llmtrace_home, mock_server, helper_started):
    """Answers go to the cache by way of the spool: a run killed straight after its calls (before any
    helper, or before the helper had committed them) leaves them for the next command, which stores them."""
    server = mock_server({"replies": [{"content": "fine"}]})
    wait = ["wait"] if helper_started else []
    slow = {} if helper_started else {"LLMTRACE_TIMER_SCALE": "1000"}  # no helper by time: 500 s, not 0.5 s
    r = run_cli("run", "-q", str(AGENTS / "helper_gone.py"), "6", "0", *wait, "die", env={**server_env(server), **slow})
    assert r.code == -9, r.stderr
    assert server.stats.requests == 6
    again = run_cli("run", "-q", str(AGENTS / "helper_gone.py"), "6", env=server_env(server))
    assert again.code == 0, again.stderr
    assert server.stats.requests == 6  # all six replayed from the cache
    _, spans = last_trace(llmtrace_home)
    assert len([s for s in spans if s.kind == "llm" and s.cache_hit]) == 6
