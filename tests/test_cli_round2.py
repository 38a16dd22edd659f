"""Round 2 of the read commands: prune's units and preview, trace references, tags, ls --json times and
money, cost --limit, all-or-nothing import, private export files, ls --name globs and --error,
show --traceback, NO_COLOR and whole summary lines.

Traces are written straight into the store with the writer (fast); only the summary test runs a script.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest

from conftest import AGENTS, HANG, ROOT, run_cli
from llmtrace import timespec
from llmtrace.errors import UserError
from llmtrace.model import Span, Trace
from llmtrace.redact import Redactor
from llmtrace.store import open_store
from llmtrace.store.queries import resolve_trace_id
from llmtrace.store.writer import StoreWriter

DAY = 86_400_000_000
HOUR = 3_600_000_000
T0 = int(datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc).timestamp() * 1e6)


def _writer(home) -> StoreWriter:
    return StoreWriter(open_store(home / "traces.db"), Redactor())


def _tid(n: int) -> str:
    return f"{n:08x}-0000-4000-8000-{n:012x}"


def _sid(n: int, i: int) -> str:
    return f"{n:08x}-{i:04x}-7000-8000-{n * 1000 + i:012x}"


def _trace(w: StoreWriter, n: int, *, name: str = "agent.py", start: int = T0, status: str = "ok", error: str | None = None,
           traceback: str | None = None, spans: list[dict] | None = None, tags: dict | None = None, finish: bool = True) -> str:
    """A trace with these spans (dicts of Span fields; an LLM call by default) written as a run would."""
    tid = _tid(n)
    w.start_trace(Trace(id=tid, name=name, start_us=start, pid=os.getpid(), tags=tags or {}))
    made = []
    for i, fields in enumerate(spans if spans is not None else [{}]):
        kw = {"kind": "llm", "name": "ChatOpenAI", "status": "ok", "model": "gpt-4o-mini", "input_tokens": 10,
              "output_tokens": 2, "cost": 0.0001, **fields}
        made.append(Span(id=_sid(n, i), trace_id=tid, parent_id=None, start_us=start + i * 10, end_us=start + i * 10 + 5, **kw))
    w.write_spans(made)
    if finish:
        w.finish_trace(Trace(id=tid, name=name, start_us=start, end_us=start + 2_000_000, status=status,
                             exit_code=1 if status == "error" else 0, error=error, traceback=traceback))
    return tid


def _one_error_line(r, *parts: str) -> str:
    assert r.code == 2, (r.code, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("llmtrace: error: "), r.stderr
    assert "Traceback" not in r.stderr
    for part in parts:
        assert part in lines[0], lines[0]
    return lines[0]


def _ls(*args: str, env: dict | None = None) -> list[dict]:
    r = run_cli("ls", "--json", *args, env=env)
    assert r.code == 0, r.stderr
    return json.loads(r.stdout)


# --- 1. prune: `m` is refused, min / mo are not; it says what it would delete ------------------------


def test_minutes_and_months_in_durations():
    now = datetime(2026, 11, 27, 15, 30, tzinfo=timezone.utc)
    us = int(now.timestamp() * 1e6)
    for text, seconds in (("90min", 5400), ("2mins", 120), ("5minutes", 300), ("1minute", 60), ("1mo", 30 * 86400),
                          ("2months", 60 * 86400), ("1month", 30 * 86400), ("1m", 60), ("3600", 3600), ("2w", 14 * 86400)):
        assert timespec.parse_duration(text) == seconds, text
    # `m` is minutes for every option (prune's too); a month is 30 days.
    assert timespec.parse_time("1m", now) == us - 60_000_000
    assert timespec.parse_time("45min", now) == us - 45 * 60_000_000
    assert timespec.parse_time("3mo", now) == us - 90 * DAY
    assert timespec.parse_time("month", now) == timespec.parse_time("this-month", now)  # the calendar word is unchanged
    assert timespec.parse_time("1m", now, option="--older-than") == timespec.parse_time("1min", now) == us - 60_000_000


def test_prune_reads_m_as_minutes_like_every_other_option(llmtrace_home):
    w = _writer(llmtrace_home)
    _trace(w, 1, start=T0)
    now = time.time_ns() // 1000
    _trace(w, 2, start=now)  # started just now: not older than 30 minutes
    for text in ("30m", "30M", "30 m"):
        r = run_cli("prune", "--older-than", text, "--yes")
        assert r.code == 0, r.stderr
    assert len(_ls()) == 1  # the old one deleted, the new one kept
    r = run_cli("ls", "--since", "1m")
    assert r.code == 0


def test_prune_says_what_it_would_delete(llmtrace_home):
    w = _writer(llmtrace_home)
    now = time.time_ns() // 1000
    old, older = now - 35 * DAY, now - 40 * DAY
    _trace(w, 1, start=older, spans=[{}] * 1200)
    _trace(w, 2, start=old, spans=[{}] * 3)
    _trace(w, 3, start=now - HOUR)
    _trace(w, 4, start=now - 36 * DAY, spans=[{}] * 2, finish=False)  # still "running": kept while its process lives
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _trace(w, 5, start=now - 38 * DAY, spans=[{}] * 2, finish=False)
    w.db.execute("UPDATE traces SET pid = ? WHERE id = ?", (dead.pid, _tid(5)))  # killed: pruned like a finished one
    day = lambda t: datetime.fromtimestamp(t / 1e6).strftime("%Y-%m-%d")  # noqa: E731 - local dates, as shown
    expected = f"would delete 3 traces (1,205 spans), oldest {day(older)}, newest {day(old)}"

    asked = run_cli("prune", "--older-than", "30d")  # stdin is not a terminal: the preview is the error line
    _one_error_line(asked, expected, "--yes")
    assert len(_ls()) == 5

    assert "no traces started before" in run_cli("prune", "--older-than", "2mo", "--yes").stderr
    r = run_cli("prune", "--older-than", "1mo", "--yes")
    assert r.code == 0 and r.stderr.splitlines() == [expected, "deleted 3 traces"], r.stderr
    assert [t["id"] for t in _ls()] == [_tid(3), _tid(4)]

    r = run_cli("prune", "--older-than", "45minutes", "--yes")
    assert r.code == 0 and r.stderr.splitlines()[0] == f"would delete 1 trace (1 span), oldest {day(now - HOUR)}, newest {day(now - HOUR)}"
    assert [t["id"] for t in _ls()] == [_tid(4)]


# --- 2. references and tags ----------------------------------------------------------------------------


def test_negative_last_offset_is_refused(llmtrace_home):
    w = _writer(llmtrace_home)
    _trace(w, 1, start=T0)
    _trace(w, 2, start=T0 + DAY)
    assert resolve_trace_id(w.db, "last~1") == _tid(1) and resolve_trace_id(w.db, "last~0") == _tid(2)
    with pytest.raises(UserError, match="cannot be negative"):
        resolve_trace_id(w.db, "last~-1")
    for argv in (["show", "last~-1"], ["rm", "last~-2"], ["export", "last~-1"]):
        _one_error_line(run_cli(*argv), "bad trace reference", "cannot be negative")
    assert len(_ls()) == 2


def test_removing_a_tag_the_trace_does_not_have(llmtrace_home):
    w = _writer(llmtrace_home)
    tid = _trace(w, 1, tags={"team": "core"})
    short = tid.replace("-", "")[:8]
    _one_error_line(run_cli("tag", "last", "--remove", "nosuchkey"), f"no tag nosuchkey on trace {short}")
    # Nothing changes when one of the keys is missing: not the tags set, not the keys that were there.
    _one_error_line(run_cli("tag", "last", "env=prod", "--remove", "team", "--remove", "nope"), f"no tag nope on trace {short}")
    assert _ls()[0]["tags"] == {"team": "core"}
    r = run_cli("tag", "last", "env=prod", "--remove", "team")
    assert r.code == 0 and f"tagged {tid[:8]}: env=prod -team" in r.stderr
    assert _ls()[0]["tags"] == {"env": "prod"}


# --- 3. ls --json times and money; cost --json money and --limit --------------------------------------


def test_ls_json_has_iso_times_and_rounded_money(llmtrace_home):
    w = _writer(llmtrace_home)
    done = _trace(w, 1, start=T0 + 123_456, spans=[{}] * 3)
    w.db.execute("UPDATE traces SET cost = 0.0016199999999999977, cost_saved = 0.00030000000000000003 WHERE id = ?", (done,))
    _trace(w, 2, start=T0 + DAY, finish=False)  # running (its pid is this test's, alive)
    r = run_cli("ls", "--json")
    assert "0.0016199999999999977" not in r.stdout and "00000003" not in r.stdout
    running, finished = json.loads(r.stdout)
    assert finished["start"] == "2026-11-20T12:00:00.123456Z" and finished["end"] == "2026-11-20T12:00:02.123456Z"
    assert finished["start_us"] == T0 + 123_456 and finished["end_us"] == T0 + 2_123_456
    assert list(finished)[list(finished).index("start_us") + 1] == "start"  # each beside its microseconds
    assert finished["totals"]["cost"] == 0.00162 and finished["totals"]["cost_saved"] == 0.0003
    assert running["status"] == "running" and running["end"] is None and running["start"] == "2026-11-21T12:00:00.000000Z"
    assert timespec.iso_utc(0) == "1970-01-01T00:00:00.000000Z" and timespec.iso_utc(None) is None

    c = run_cli("cost", "--json")
    assert c.code == 0 and "00000003" not in c.stdout
    (row,) = json.loads(c.stdout)["rows"]
    assert row["calls"] == 4 and row["cost"] == 0.0004 and row["saved"] == 0


def test_cost_by_trace_is_limited(llmtrace_home):
    w = _writer(llmtrace_home)
    for n in range(1, 26):  # 25 traces, costlier as n grows
        _trace(w, n, start=T0 + n, spans=[{"cost": n / 1000}])
    total = sum(n / 1000 for n in range(1, 26))

    r = run_cli("cost", "--by", "trace")
    assert r.code == 0, r.stderr
    rows = [line for line in r.stdout.splitlines()[1:] if line.strip()]
    assert rows[0].startswith(_tid(25)[:8]) and rows[19].startswith(_tid(6)[:8])
    assert rows[20].split()[:5] == ["…", "and", "5", "more", "5"]  # traces 1..5 in one row: 5 calls
    assert rows[-1].startswith("total") and f"${total:,.4f}" in rows[-1]  # the total is still the period's
    assert "… and 5 more traces (--limit 0 for all)" in r.stderr.splitlines()

    everything = run_cli("cost", "--by", "trace", "--limit", "0")
    assert everything.code == 0 and "more traces" not in everything.stderr
    lines = [line for line in everything.stdout.splitlines()[1:] if line.strip()]
    assert len(lines) == 26 and lines[-1] == rows[-1]

    j = run_cli("cost", "--by", "trace", "--limit", "3", "--json")
    data = json.loads(j.stdout)
    assert [x["key"] for x in data["rows"]] == [_tid(25), _tid(24), _tid(23)] and data["more"] == 22
    assert "… and 22 more traces (--limit 0 for all)" in j.stderr
    assert json.loads(run_cli("cost", "--by", "trace", "-n", "30", "--json").stdout)["more"] == 0
    _one_error_line(run_cli("cost", "--by", "model", "--limit", "3"), "--limit goes with --by trace")


# --- 4. import: all or nothing --------------------------------------------------------------------------


def test_import_is_all_or_nothing(llmtrace_home, tmp_path):
    w = _writer(llmtrace_home)
    ids = [_trace(w, n, start=T0 + n) for n in (1, 2, 3)]
    many, one = tmp_path / "many.jsonl", tmp_path / "one.json"
    assert run_cli("export", *ids, "--format", "jsonl", "-o", str(many)).code == 0
    assert run_cli("export", ids[1], "-o", str(one)).code == 0
    other = {"LLMTRACE_HOME": str(tmp_path / "other")}
    r = run_cli("import", str(one), env=other)
    assert r.code == 0 and r.stderr.strip() == f"imported 1 trace ({ids[1][:8]})"

    line = _one_error_line(run_cli("import", str(many), env=other), "1 of the 3 traces are already in this store",
                           f"the first {ids[1]}", "nothing imported", "--skip-existing")
    assert [t["id"] for t in _ls(env=other)] == [ids[1]]  # nothing written
    single = _one_error_line(run_cli("import", str(one), env=other), f"trace {ids[1]} is already in this store", "--replace")
    assert single != line

    r = run_cli("import", "--skip-existing", str(many), env=other)
    assert r.code == 0 and r.stderr.strip() == "imported 2 traces, skipped 1 already here"
    assert sorted(t["id"] for t in _ls(env=other)) == ids
    r = run_cli("import", "--skip-existing", str(many), env=other)
    assert r.code == 0 and r.stderr.strip() == "imported 0 traces, skipped 3 already here"
    r = run_cli("import", "--replace", str(many), env=other)
    assert r.code == 0 and r.stderr.strip() == "imported 3 traces"

    twice = tmp_path / "twice.jsonl"
    twice.write_text(many.read_text() + many.read_text().splitlines()[0] + "\n")
    _one_error_line(run_cli("import", str(twice), env={"LLMTRACE_HOME": str(tmp_path / "third")}), f"trace {ids[0]} is in", "more than once")
    assert _ls(env={"LLMTRACE_HOME": str(tmp_path / "third")}) == []
    _one_error_line(run_cli("import", "--replace", "--skip-existing", str(many)), "one at a time")


# --- 5. export files are owner-only ------------------------------------------------------------------------


def test_export_file_is_private(llmtrace_home, tmp_path):
    _trace(_writer(llmtrace_home), 1)
    new = tmp_path / "new.json"
    assert run_cli("export", "last", "-o", str(new)).code == 0
    assert stat.S_IMODE(new.stat().st_mode) == 0o600 and json.loads(new.read_text())["trace"]["id"] == _tid(1)
    old = tmp_path / "old.jsonl"
    old.write_text("x" * 100_000)
    old.chmod(0o644)
    assert run_cli("export", "last", "--format", "jsonl", "-o", str(old)).code == 0
    assert stat.S_IMODE(old.stat().st_mode) == 0o600 and json.loads(old.read_text())["trace"]["id"] == _tid(1)
    _one_error_line(run_cli("export", "last", "-o", str(tmp_path / "no" / "such" / "dir.json")), "cannot write")


# --- 6, 7. ls --name globs, ls --error --------------------------------------------------------------------


def test_ls_name_glob(llmtrace_home):
    w = _writer(llmtrace_home)
    for n, name in enumerate(["math_agent.py", "math_graph.py", "other.py", "mathXagent.py", "answer: n=7", "answer",
                              "answers: n=8", "answer:n=9"], start=1):
        _trace(w, n, name=name, start=T0 + n)
    names = lambda pattern: sorted(t["name"] for t in _ls("--name", pattern))  # noqa: E731
    assert names("math*") == ["mathXagent.py", "math_agent.py", "math_graph.py"]
    assert names("math_agent.py") == ["math_agent.py"]  # exact: _ is no wildcard
    assert names("math?agent.py") == ["mathXagent.py", "math_agent.py"]
    assert names("[mo]*_*.py") == ["math_agent.py", "math_graph.py"]
    assert names("MATH*") == [] and names("math") == []
    assert names("answer") == ["answer", "answer: n=7"]  # a split run's traces: the runnable and its input's head
    assert names("answer: n=7") == ["answer: n=7"] and names("answer*") == ["answer", "answer: n=7", "answer:n=9", "answers: n=8"]
    r = run_cli("ls", "--name", "nomatch*")
    assert r.code == 0 and "no traces match" in r.stderr


def test_ls_error_text(llmtrace_home):
    w = _writer(llmtrace_home)
    _trace(w, 1, status="error", error="WeatherServiceDown: weather service unreachable", start=T0 + 1)
    _trace(w, 2, status="error", error="ValueError: 100% wrong_value", start=T0 + 2)
    _trace(w, 3, start=T0 + 3)
    ids = lambda *a: [t["id"] for t in _ls(*a)]  # noqa: E731
    assert ids("--status", "error", "--error", "weatherservice") == [_tid(1)]
    assert ids("--error", "UNREACHABLE") == [_tid(1)]
    assert ids("--error", "%") == [_tid(2)] and ids("--error", "_") == [_tid(2)]  # literal, not LIKE wildcards
    assert ids("--error", "100% w") == [_tid(2)] and ids("--error", "g_v") == [_tid(2)] and ids("--error", "gxv") == []
    assert ids("--error", "Error") == [_tid(2)] and ids("--error", "") == [_tid(2), _tid(1)]
    assert ids("--status", "ok", "--error", "weather") == []
    r = run_cli("ls", "--error", "nothing like it")
    assert r.code == 0 and "no traces match" in r.stderr


# --- 8. show --span keeps the traceback, show --traceback prints them all ------------------------------


TB_TOOL = 'Traceback (most recent call last):\n  File "tools.py", line 9, in weather\n    raise WeatherServiceDown("x[1]")\nWeatherServiceDown: weather service unreachable\n'
TB_LLM = "Traceback (most recent call last):\n  File \"openai.py\", line 1, in create\nopenai.RateLimitError: 429\n"
TB_SCRIPT = 'Traceback (most recent call last):\n  File "agent.py", line 3, in <module>\n    main()\nRuntimeError: gave up\n'


def test_show_traceback(llmtrace_home):
    w = _writer(llmtrace_home)
    tid = _trace(w, 1, status="error", error="RuntimeError: gave up", traceback=TB_SCRIPT, spans=[
        {},
        {"kind": "tool", "name": "weather", "status": "error", "error_type": "WeatherServiceDown",
         "error_message": "weather service unreachable", "metadata": {"traceback": TB_TOOL, "k": 1}},
        {"status": "error", "error_type": "RateLimitError", "metadata": {"traceback": TB_LLM}},
        {"kind": "tool", "name": "calc", "status": "error", "error_type": "Cancelled"},  # no traceback kept
    ])
    tool_ref, llm_ref = _sid(1, 1).replace("-", "")[-8:], _sid(1, 2).replace("-", "")[-8:]

    span = json.loads(run_cli("show", "last", "--span", tool_ref).stdout)
    assert span["metadata"] == {"traceback": TB_TOOL, "k": 1}

    r = run_cli("show", tid[:8], "--traceback")
    assert r.code == 0 and r.stderr == ""
    assert r.stdout == (f"── span weather ({tool_ref}) ──\n{TB_TOOL}\n── span ChatOpenAI ({llm_ref}) ──\n{TB_LLM}\n"
                        f"── script ──\n{TB_SCRIPT}")

    _trace(w, 2, start=T0 + DAY)
    r = run_cli("show", "last", "--traceback")
    assert r.code == 0 and r.stdout == "" and r.stderr.strip() == "no traceback in this trace"
    _one_error_line(run_cli("show", "last", "--traceback", "--json"), "one at a time")


# --- 9. NO_COLOR: not a single escape, even forced to a terminal ---------------------------------------


def test_no_color_means_no_styles_at_all(llmtrace_home):
    w = _writer(llmtrace_home)
    _trace(w, 1, status="error", error="Boom: x", spans=[{}, {"kind": "tool", "name": "t", "status": "error", "error_type": "Boom"}])
    forced = {"TERM": "xterm-256color", "FORCE_COLOR": "1", "TTY_COMPATIBLE": "1", "PAGER": "cat"}
    commands = (["ls"], ["show", "last", "--no-pager"], ["show", "last", "--full", "--no-pager"], ["cost"])
    colored = [run_cli(*argv, env=forced) for argv in commands[2:]]  # the forcing works (on stdout and stderr)
    assert all(r.code == 0 and "\x1b[" in r.stdout for r in colored) and "\x1b[" in colored[-1].stderr
    for argv in commands:
        r = run_cli(*argv, env={**forced, "NO_COLOR": "1"})
        assert r.code == 0 and r.stdout.strip(), (argv, r.stderr)
        assert "\x1b[" not in r.stdout and "\x1b[" not in r.stderr, argv


# --- 10. the run summary is never wrapped into a pipe ----------------------------------------------------


def test_summary_lines_are_whole_in_a_pipe(llmtrace_home):
    name = "a-long-name-" + "x" * 150
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    for columns in (None, "40"):
        p = subprocess.run([sys.executable, "-m", "llmtrace", "run", "--name", name, str(AGENTS / "behaves_like_python.py"), "raise"],
                           capture_output=True, text=True, env={**env, **({"COLUMNS": columns} if columns else {})},
                           timeout=HANG, cwd=str(ROOT))
        assert p.returncode == 1, p.stderr
        tid = json.loads(p.stdout)["trace_id"]
        lines = p.stderr.splitlines()
        (head,) = [line for line in lines if line.startswith("llmtrace: trace ")]
        assert head.startswith(f"llmtrace: trace {tid.replace('-', '')[:8]} ({tid}) error (exit 1) in "), head
        assert len(head) > 80
        (calls,) = [line for line in lines if "LLM calls" in line]
        assert calls.startswith("  0 LLM calls · 0 tool calls · 0 in / 0 out tokens · ")
    assert [t["name"] for t in _ls()] == [name, name]
    # The script's uncaught exception, whole, from a real run.
    r = run_cli("show", "last", "--traceback")
    assert r.code == 0 and r.stdout.startswith("── script ──\nTraceback (most recent call last):\n")
    assert r.stdout.rstrip().endswith("ValueError: boom from the script")
