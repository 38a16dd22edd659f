"""`run --split`: one trace per top-level invocation, sharing a run id — end to end through the
scripted server, with a real script that loops, runs invocations in parallel threads, calls a tool
and the SDK bare, fails once (caught) and forks a worker process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import AGENTS, ROOT, assert_no_orphans, run_cli, server_env

SCRIPT = str(AGENTS / "split_agent.py")


def _db(home):
    from llmtrace.store import open_store

    return open_store(home / "traces.db")


def _base(t):
    return t["name"].split(": ")[0]


def _ls(*args, env):
    r = run_cli("ls", "--json", "-n", "100", *args, env=env)
    assert r.code == 0, r.stderr
    return json.loads(r.stdout)


def test_split_run_one_trace_per_invocation(mock_server, llmtrace_home):
    from llmtrace.store.queries import get_spans

    server = mock_server()
    env = server_env(server)
    python = subprocess.run([sys.executable, SCRIPT], capture_output=True, text=True, env={**__import__("os").environ, **env},
                            cwd=str(ROOT), timeout=300)
    assert python.returncode == 0, python.stderr
    r = run_cli("run", "--split", "--no-cache", "--tag", "team=core", SCRIPT, env=env)
    assert r.code == 0, r.stderr
    assert r.stdout == python.stdout  # splitting changes nothing the script sees

    listed = _ls(env=env)  # plain ls: the invocations; the run's own record has nothing to add
    run_id = listed[0]["run_id"]
    assert run_id and all(t["run_id"] == run_id for t in listed)
    assert run_id not in {t["id"] for t in listed}
    # Each named after its top-level runnable and the head of its input: which invocation is which.
    assert sorted(t["name"] for t in listed) == sorted(
        ["RunnableSequence: alpha", "RunnableSequence: beta", "RunnableSequence: gamma", "two_calls: left",
         "two_calls: right", "lookup: Oslo", "find: Atlantis", "openai.chat.completions: bare", "forks: delta"])
    assert f"split into 9 traces (1 failed)" in r.stderr and f"llmtrace ls --run {run_id[:8]}" in r.stderr

    in_run = _ls("--run", listed[-1]["id"][:10], env=env)  # any trace of the run names the run
    assert {t["id"] for t in in_run} == {t["id"] for t in listed} | {run_id}
    record = next(t for t in in_run if t["id"] == run_id)
    assert record["name"] == "split_agent.py" and record["status"] == "ok" and record["exit_code"] == 0
    assert record["totals"]["llm_calls"] == 0  # every call is in an invocation's trace

    db = _db(llmtrace_home)
    try:
        spans = {t["id"]: get_spans(db, t["id"]) for t in listed}
        everything = db.execute("SELECT count(*), COALESCE(SUM(cost), 0) FROM spans WHERE kind = 'llm'").fetchone()
    finally:
        db.close()
    for t in listed:
        s = spans[t["id"]]
        assert all(x.trace_id == t["id"] for x in s)
        assert_no_orphans(s)
        assert [x.name for x in s if x.parent_id is None] == [_base(t)]  # one top-level span: the invocation
        assert t["tags"] == {"team": "core"}
        assert t["totals"]["llm_calls"] == sum(x.kind == "llm" for x in s)
    # The parallel invocations kept their own calls apart.
    for t in (t for t in listed if _base(t) == "two_calls"):
        prompts = [json.dumps(x.inputs) for x in spans[t["id"]] if x.kind == "llm"]
        side = "left" if "left" in prompts[0] else "right"
        assert len(prompts) == 2 and all(side in p for p in prompts), prompts
    # The forked worker's call joined the invocation it was forked in.
    fork = next(t for t in listed if _base(t) == "forks")
    assert [x.kind for x in spans[fork["id"]]].count("llm") == 1
    failed = next(t for t in listed if _base(t) == "find")
    assert failed["status"] == "error" and "LookupError: no such city: Atlantis" in failed["error"]
    assert all(t["status"] == "ok" for t in listed if _base(t) != "find")
    assert sum(t["totals"]["llm_calls"] for t in listed) == everything[0] == 9

    # cost --by run sums the run's traces; ls --status error finds the failed one.
    cost = json.loads(run_cli("cost", "--by", "run", "--json", env=env).stdout)
    assert [row["key"] for row in cost["rows"]] == [run_id]
    assert cost["rows"][0]["calls"] == 9 and abs(cost["rows"][0]["cost"] - everything[1]) < 1e-12
    assert [t["id"] for t in _ls("--status", "error", "--error", "Atlantis", env=env)] == [failed["id"]]

    # tag and feedback go to one trace of the run, not to the others.
    one = listed[0]["id"]
    assert run_cli("tag", one, "checked=yes", env=env).code == 0
    assert run_cli("feedback", one, "--score", "1", "--comment", "right answer", env=env).code == 0
    after = {t["id"]: t for t in _ls("--run", run_id, env=env)}
    assert after[one]["tags"] == {"team": "core", "checked": "yes"} and after[one]["feedback"][0]["comment"] == "right answer"
    assert all(t["tags"] == {"team": "core"} and not t["feedback"] for i, t in after.items() if i != one)

    shown = run_cli("show", failed["id"], env=env)
    assert shown.code == 0 and f"part of run {run_id[:8]}" in shown.stdout and "no such city" in shown.stdout
    assert "\ninput: Atlantis\n" in shown.stdout  # the request's input, at the root
    shown = run_cli("show", fork["id"], env=env)
    assert "\ninput: delta\noutput: worker exit 0\n" in shown.stdout


def test_split_run_that_crashes(mock_server, llmtrace_home):
    server = mock_server()
    env = server_env(server)
    r = run_cli("run", "--split", "--no-cache", SCRIPT, "--crash", env=env)
    assert r.code == 1 and "LookupError: no such city: Atlantis" in r.stderr  # as python reports it
    listed = _ls(env=env)
    run_id = listed[0]["run_id"]
    record = next(t for t in listed if t["id"] == run_id)  # a run that failed is news: plain ls shows it
    assert record["status"] == "error" and record["exit_code"] == 1 and "Traceback" in record["traceback"]
    crashed = [t for t in listed if _base(t) == "find"]
    assert len(crashed) == 2 and all(t["status"] == "error" for t in crashed)
    assert "split into 10 traces (2 failed)" in r.stderr


def test_split_streams_live_otlp(mock_server, llmtrace_home):
    """Each trace of a split run goes out live as an OpenTelemetry trace of its own (its spans, then its
    root when it ends), the forked worker's span with the invocation it was forked in."""
    pytest.importorskip("opentelemetry.proto")
    from collector import Collector, attributes

    from llmtrace.export.otlp import trace_id_bytes

    receiver = Collector()
    try:
        server = mock_server()
        r = run_cli("run", "--split", "--no-cache", "--otlp", receiver.url, SCRIPT, env=server_env(server))
        assert r.code == 0, r.stderr
        listed = [t for t in _ls(env=server_env(server)) if t["id"] != t["run_id"]]
        sent = receiver.spans()
    finally:
        receiver.close()
    assert len(listed) == 9
    db = _db(llmtrace_home)
    try:
        from llmtrace.store.queries import get_spans

        for t in listed:
            stored = get_spans(db, t["id"])
            mine = [s for s in sent if s.trace_id == trace_id_bytes(t["id"])]
            roots = [s for s in mine if attributes(s).get("llmtrace.span.kind") == "run"]
            assert len(roots) == 1 and roots[0].name == f"invoke_agent {t['name']}", [s.name for s in mine]
            if _base(t) != "forks":  # the root's totals are what its own process saw: the worker's call went out from the worker
                assert attributes(roots[0])["llmtrace.llm_calls"] == t["totals"]["llm_calls"], t["name"]
            assert len(mine) == len(stored) + 1, (t["name"], [s.name for s in mine], [s.name for s in stored])
    finally:
        db.close()


def test_unsplit_run_streamed_figures_and_ls_run(mock_server, llmtrace_home):
    server = mock_server()
    env = server_env(server)
    assert run_cli("run", str(AGENTS / "one_call.py"), "hello", "--stream", env=env).code == 0
    [t] = _ls(env=env)
    assert t["run_id"] is None
    # ls --json and cost carry the streamed calls' time to first token and chunk count.
    assert t["streamed"]["calls"] == 1 and t["streamed"]["chunks"] > 1
    assert 0 < t["streamed"]["ttft_us"] <= t["end_us"] - t["start_us"]
    [row] = json.loads(run_cli("cost", "--json", env=env).stdout)["rows"]
    assert row["streamed_calls"] == 1 and row["ttft_us"] == t["streamed"]["ttft_us"]
    assert "ttft" in run_cli("cost", env=env).stdout
    r = run_cli("ls", "--run", "last", env=env)
    assert r.code == 2 and "not recorded with `run --split`" in r.stderr


def test_settling_a_run_reads_its_own_spans_not_the_whole_store(tmp_path):
    """A split run's (and a pytest session's) end sums the totals of the run's traces from their spans:
    the work must not grow with other traces' spans in the store (it used to sum the totals view over
    every span). Counted in SQLite VM steps, not time."""
    from llmtrace.model import Span, Trace
    from llmtrace.redact import Redactor
    from llmtrace.store.writer import StoreWriter

    w = StoreWriter(_db(tmp_path), Redactor())
    run_id, t0 = "0190aaaa-0000-7000-8000-000000000000", 1_800_000_000_000_000
    tests = [f"0190aaaa-0000-7000-8000-0000000000{i:02d}" for i in range(1, 4)]
    w.start_trace(Trace(id=run_id, name="pytest", start_us=t0, pid=1, run_id=run_id))
    for n, tid in enumerate(tests):
        w.start_trace(Trace(id=tid, name=f"test_{n}", start_us=t0, pid=1, run_id=run_id))
        w.write_spans([Span(id=f"{tid}-{k}", trace_id=tid, parent_id=None, kind="llm", name="ChatOpenAI",
                            start_us=t0 + k, end_us=t0 + k + 1, status="ok", input_tokens=10 * (n + 1), output_tokens=1,
                            cost=0.5) for k in range(n + 1)])
    # A child's span that landed in the run's own record: it joins its parent's trace when the run settles.
    w.write_spans([Span(id="child", trace_id=run_id, parent_id=f"{tests[2]}-0", kind="llm", name="ChatOpenAI",
                        start_us=t0 + 9, end_us=t0 + 10, status="ok", input_tokens=7, output_tokens=1, cost=0.25)])

    def settle_steps() -> int:
        steps = [0]

        def count() -> int:
            steps[0] += 1
            return 0

        w.db.set_progress_handler(count, 100)
        try:
            w.settle_split_run(run_id)
        finally:
            w.db.set_progress_handler(None, 0)
        return steps[0]

    alone = settle_steps()
    totals = {r[0]: r[1:] for r in w.db.execute(
        "SELECT id, llm_calls, input_tokens, cost FROM traces WHERE run_id = ?", (run_id,))}
    assert totals == {run_id: (0, 0, 0), tests[0]: (1, 10, 0.5), tests[1]: (2, 40, 1.0), tests[2]: (4, 97, 1.75)}

    other = "0190bbbb-0000-7000-8000-000000000000"  # another run's trace, with many spans
    w.start_trace(Trace(id=other, name="other.py", start_us=t0, pid=1))
    w.write_spans([Span(id=f"o{k}", trace_id=other, parent_id=None, kind="chain", name="step", start_us=t0 + k,
                        end_us=t0 + k + 1, status="ok") for k in range(5000)])
    assert settle_steps() < 2 * alone + 50
    assert {r[0]: r[1:] for r in w.db.execute(
        "SELECT id, llm_calls, input_tokens, cost FROM traces WHERE run_id = ?", (run_id,))} == totals
    w.close()
