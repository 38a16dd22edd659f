"""The Python API (llmtrace/api.py): `llmtrace.trace()` as a context manager and a decorator (sync and
async), nesting, errors, the environment put back, blocks in two threads or tasks at once, enable() /
disable(), and a script using the API run under `llmtrace run` (traced once)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from conftest import run_cli, server_env, store

PRELUDE = textwrap.dedent('''
    import asyncio, json, os, sys, threading
    import openai
    import llmtrace

    client = openai.OpenAI()
    def ask(text):
        return client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}])
''')


def run_python(tmp_path, body: str, server, name: str = "prog.py", *cli: str):
    script = tmp_path / name
    script.write_text(PRELUDE + textwrap.dedent(body))
    if cli:
        return run_cli(*cli, str(script), env=server_env(server))
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=False,
                       env={**os.environ, **server_env(server)})
    return p


def rows(home):
    db = store(home)
    try:
        return db.execute("SELECT id, name, status, llm_calls, error, traceback FROM traces ORDER BY start_us").fetchall()
    finally:
        db.close()


def spans(home, trace_id):
    db = store(home)
    try:
        return db.execute("SELECT id, parent_id, kind, name, status FROM spans WHERE trace_id = ? ORDER BY start_us",
                          (trace_id,)).fetchall()
    finally:
        db.close()


def test_import_llmtrace_stays_cheap():
    code = "import sys, llmtrace; llmtrace.trace; print(sorted(m for m in sys.modules if m.split('.')[0] in ('langchain_core', 'openai', 'rich', 'typer')))"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert p.stdout.strip() == "[]"


def test_context_manager_decorators_nesting_and_errors(llmtrace_home, mock_server, tmp_path):
    server = mock_server()
    p = run_python(tmp_path, '''
        before = dict(os.environ)
        with llmtrace.trace("outer", tags={"team": "core"}) as t:
            ask("one")
            during = os.environ.get("LLMTRACE_CHILD") is not None
            with llmtrace.trace("inner") as inner:
                ask("two")

        @llmtrace.trace
        def plain(q):
            ask(q)
            return 42

        @llmtrace.trace("named async", retries=0)
        async def coro():
            return await asyncio.to_thread(ask, "async")

        answer = plain("decorated")
        asyncio.run(coro())
        try:
            with llmtrace.trace("boom") as b:
                ask("x")
                raise ValueError("bad input")
        except ValueError as e:
            same = str(e) == "bad input"
        print(json.dumps({"id": t.id, "status": t.status, "calls": t.totals.llm_calls, "nested": inner.nested,
                          "inner_id": inner.id, "answer": answer, "armed_during": during,
                          "env_back": dict(os.environ) == before, "same": same, "b": [b.status, b.error]}))
    ''', server)
    assert p.returncode == 0, p.stderr
    seen = json.loads(p.stdout.strip().splitlines()[-1])
    assert seen["status"] == "ok" and seen["calls"] == 2 and seen["nested"] and seen["inner_id"] == seen["id"]
    assert seen["answer"] == 42 and seen["armed_during"] and seen["env_back"] and seen["same"]
    assert seen["b"] == ["error", "ValueError: bad input"]
    table = rows(llmtrace_home)
    assert [(name, status, calls) for _, name, status, calls, _, _ in table] == [
        ("outer", "ok", 2), ("plain", "ok", 1), ("named async", "ok", 1), ("boom", "error", 1)]
    outer = spans(llmtrace_home, seen["id"])
    assert [(kind, name) for _, _, kind, name, _ in outer] == [("llm", "openai.chat.completions"), ("chain", "inner"),
                                                              ("llm", "openai.chat.completions")]
    assert outer[2][1] == outer[1][0]  # "two" hangs under the inner block
    boom = table[3]
    assert boom[4] == "ValueError: bad input" and 'raise ValueError("bad input")' in boom[5]
    db = store(llmtrace_home)
    assert db.execute("SELECT key, value FROM trace_tags WHERE trace_id = ?", (seen["id"],)).fetchall() == [("team", "core")]


def test_blocks_in_two_threads_and_two_tasks_at_once_share_one_trace_cleanly(llmtrace_home, mock_server, tmp_path):
    server = mock_server()
    p = run_python(tmp_path, '''
        barrier = threading.Barrier(2)
        handles = []
        def worker(n):
            with llmtrace.trace(f"thread {n}") as h:
                barrier.wait()  # both blocks are open at once
                ask(f"thread {n}")
                barrier.wait()
            handles.append(h)
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(2)]
        [t.start() for t in threads]; [t.join() for t in threads]

        async def task(n, both):
            async with llmtrace.trace(f"task {n}") as h:
                both.append(n)
                while len(both) < 2:
                    await asyncio.sleep(0)
                await asyncio.to_thread(ask, f"task {n}")
            return h
        async def main():
            both = []
            return await asyncio.gather(task(0, both), task(1, both))
        tasks = asyncio.run(main())
        print(json.dumps([[h.id, h.nested, h.status] for h in handles + list(tasks)]))
    ''', server)
    assert p.returncode == 0, p.stderr
    seen = json.loads(p.stdout.strip().splitlines()[-1])
    table = rows(llmtrace_home)
    assert len(table) == 2 and all(status == "ok" and calls == 2 for _, _, status, calls, _, _ in table)
    for pair in (seen[:2], seen[2:]):
        assert pair[0][0] == pair[1][0] and sorted(h[1] for h in pair) == [False, True]
        trace_spans = spans(llmtrace_home, pair[0][0])
        chain = [s for s in trace_spans if s[2] == "chain"]
        llm = [s for s in trace_spans if s[2] == "llm"]
        assert len(chain) == 1 and len(llm) == 2 and all(s[4] == "ok" for s in trace_spans)
        assert {s[1] for s in llm} == {None, chain[0][0]}  # each call under its own block


def test_enable_for_a_process_and_the_api_under_llmtrace_run(llmtrace_home, mock_server, tmp_path):
    server = mock_server()
    p = run_python(tmp_path, '''
        llmtrace.enable("whole process")
        ask("one")
        with llmtrace.trace("step"):
            ask("two")
        raise SystemExit(0)
    ''', server)
    assert p.returncode == 0, p.stderr
    (tid, name, status, calls, _, _), = rows(llmtrace_home)
    assert (name, status, calls) == ("whole process", "ok", 2)

    r = run_python(tmp_path, '''
        with llmtrace.trace("inside run") as t:
            ask("three")
        print(json.dumps({"nested": t.nested, "id": t.id, "env": os.environ["LLMTRACE_TRACE_ID"]}))
    ''', server, "under_run.py", "run")
    assert r.code == 0, r.stderr
    seen = json.loads(r.stdout.strip().splitlines()[-1])
    assert seen["nested"] and seen["id"] == seen["env"]
    table = rows(llmtrace_home)
    assert len(table) == 2 and table[1][1] == "under_run.py" and table[1][3] == 1  # traced once
    assert [(kind, name) for _, _, kind, name, _ in spans(llmtrace_home, seen["id"])] == [
        ("chain", "inside run"), ("llm", "openai.chat.completions")]
