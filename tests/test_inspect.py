"""ls / show / cost / tag / feedback / rm / prune on a store filled by real runs and by the writer."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import datetime, timezone

import pytest
from rich.console import Console

from conftest import AGENTS, HANG, run_cli, skip_unless_ci, use_home
from llmtrace import timespec
from llmtrace.errors import UserError
from llmtrace.model import Feedback, Span, Trace
from llmtrace.redact import Redactor
from llmtrace.render.tables import cost_table, trace_table
from llmtrace.store import open_store
from llmtrace.store.queries import TraceFilter, cost_report, list_traces
from llmtrace.store.writer import StoreWriter

DAY = 86_400_000_000
T0 = int(datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc).timestamp() * 1e6)


def _render(renderable, width=140) -> str:
    buf = io.StringIO()
    Console(file=buf, width=width, color_system=None).print(renderable)
    return buf.getvalue()


def _fill(home) -> StoreWriter:
    """Three traces over three days, two models, one unknown model, one cache hit, one retried call."""
    w = StoreWriter(open_store(home / "traces.db"), Redactor())
    plan = [
        ("aaaa0001-0000-4000-8000-000000000001", "agent.py", T0, {"team": "core"}, [("gpt-4o-mini", 100, 10, 0.00002, None, None, 1)]),
        ("bbbb0002-0000-4000-8000-000000000002", "agent.py", T0 + DAY, {"team": "ml"}, [("gpt-4o", 200, 20, 0.0007, None, None, 3), ("acme-x", 50, 5, None, None, None, 1)]),
        ("cccc0003-0000-4000-8000-000000000003", "other.py", T0 + 2 * DAY, {}, [("gpt-4o-mini", 100, 10, 0.0, "exact", 0.00002, 1)]),
    ]
    for tid, name, start, tags, calls in plan:
        w.start_trace(Trace(id=tid, name=name, start_us=start, tags=tags, pid=1))
        for i, (model, inp, out, cost, hit, saved, attempts) in enumerate(calls):
            w.write_span(Span(id=f"{tid[:8]}-{i}", trace_id=tid, parent_id=None, kind="llm", name="ChatOpenAI", start_us=start + i,
                              end_us=start + 1000, status="ok", model=model, input_tokens=inp, output_tokens=out, cost=cost,
                              cache_hit=hit, cost_saved=saved, attempts=attempts))
        w.finish_trace(Trace(id=tid, name=name, start_us=start, end_us=start + 2_000_000, status="ok", exit_code=0))
    return w


def test_cost_report_groups_and_flags_unpriced(llmtrace_home):
    db = _fill(llmtrace_home).db
    rows = {r.key: r for r in cost_report(db, None, None, "model")}
    assert set(rows) == {"gpt-4o-mini", "gpt-4o", "acme-x"}
    assert rows["gpt-4o-mini"].calls == 2 and rows["gpt-4o-mini"].cached_calls == 1 and rows["gpt-4o-mini"].saved == pytest.approx(0.00002)
    assert rows["acme-x"].unpriced_calls == 1 and rows["acme-x"].cost == 0
    by_tag = {r.key: r.calls for r in cost_report(db, None, None, "tag:team")}
    assert by_tag == {"core": 1, "ml": 2, "(no tag)": 1}
    assert [r.calls for r in cost_report(db, T0 + DAY, T0 + 2 * DAY, "trace")] == [2]
    assert {r.key: r.calls for r in cost_report(db, None, None, "name")} == {"agent.py": 3, "other.py": 1}
    assert len(cost_report(db, None, None, "day")) == 3
    with pytest.raises(UserError, match="bad --by"):
        cost_report(db, None, None, "colour")


COST_TABLE = """\
model        calls  tokens in  tokens out       cost  cached      saved  unpriced
gpt-4o           1        200          20  $0.000700       0         $0         0
gpt-4o-mini      2        200          20  $0.000020       1  $0.000020         0
acme-x           1         50           5         $0       0         $0       1 ⚠
total            4        450          45  $0.000720       1  $0.000020         1
"""


def test_cost_table_text(llmtrace_home):
    rows = cost_report(_fill(llmtrace_home).db, None, None, "model")
    assert _render(cost_table(rows, "model")) == COST_TABLE


LS_TABLE = """\
id        name      started           duration  status  llm  tools  tokens                     cost  cached  retries     score  tags     
cccc0003  other.py  2h 0m ago            2.00s  ok        1      0     110                       $0       1                              
bbbb0002  agent.py  2026-11-21 12:00     2.00s  ok        2      0     275  $0.000700 (+1 unpriced)                2      +3.0  team=ml  
aaaa0001  agent.py  2026-11-20 12:00     2.00s  error     1      0     110                $0.000020                   -2.0 (2)  team=core
"""


def test_ls_table_text(llmtrace_home):
    w = _fill(llmtrace_home)
    traces = list_traces(w.db, TraceFilter())
    traces[1].feedback = [Feedback(3, None, T0)]
    traces[2].feedback = [Feedback(-1, None, T0), Feedback(-3, "bad", T0)]
    traces[2].status = "error"
    assert _render(trace_table(traces, now_us=T0 + 2 * DAY + 2 * 3_600_000_000, tz=timezone.utc)) == LS_TABLE


def test_ls_filters(llmtrace_home):
    db = _fill(llmtrace_home).db
    ids = lambda **kw: [t.id[:4] for t in list_traces(db, TraceFilter(**kw))]  # noqa: E731
    assert ids() == ["cccc", "bbbb", "aaaa"]
    assert ids(since_us=T0 + DAY) == ["cccc", "bbbb"]
    assert ids(until_us=T0 + DAY) == ["aaaa"]
    assert ids(tags={"team": "ml"}) == ["bbbb"]
    assert ids(name="agent.py", limit=1) == ["bbbb"]
    assert ids(status="error") == []
    assert ids(tags={"team": "' OR 1=1 --"}) == []


def test_timespec():
    now = datetime(2026, 11, 27, 15, 30, tzinfo=timezone.utc)  # a Friday
    us = lambda dt: int(dt.timestamp() * 1e6)  # noqa: E731
    local = now.astimezone()
    mid = local.replace(hour=0, minute=0, second=0, microsecond=0)
    assert timespec.parse_time("today", now) == us(mid)
    assert timespec.parse_time("24h", now) == us(now) - 24 * 3_600_000_000
    assert timespec.parse_time("30m", now) == us(now) - 30 * 60_000_000
    assert timespec.parse_time("7d", now) == us(now) - 7 * DAY
    assert timespec.parse_time("this-month", now) == us(mid.replace(day=1))
    assert datetime.fromtimestamp(timespec.parse_time("this-week", now) / 1e6).astimezone().weekday() == 0
    assert timespec.parse_time("2026-11-01T10:00:00+00:00", now) == us(datetime(2026, 11, 1, 10, tzinfo=timezone.utc))
    assert timespec.parse_time("yesterday", now) == us(mid) - DAY
    for bad in ("soon", "7x", "2026-13-01", ""):
        with pytest.raises(UserError):
            timespec.parse_time(bad, now)


def test_inspect_commands_end_to_end(llmtrace_home, math_runs):
    use_home(math_runs["math_agent.py"].cold, llmtrace_home)  # `llmtrace run --tag team=core sample_agents/math_agent.py`
    assert run_cli("run", "--name", "second", str(AGENTS / "behaves_like_python.py")).code == 0

    r = run_cli("ls", "--json")
    rows = json.loads(r.stdout)
    assert [t["name"] for t in rows] == ["second", "math_agent.py"]
    math_id = rows[1]["id"]
    assert rows[1]["totals"]["llm_calls"] == 4 and rows[1]["tags"] == {"team": "core"}

    assert run_cli("tag", math_id[:6], "ticket=ABC-1", "env=dev").code == 0
    assert run_cli("tag", math_id[:6], "--remove", "env").code == 0
    assert run_cli("feedback", math_id[:8], "--score", "8", "--comment", "right answer").code == 0
    assert run_cli("feedback", "last", "--score", "-2").code == 0  # the newest: "second"
    assert run_cli("feedback", "last~1", "--score", "-2").code == 0
    shown = run_cli("show", math_id[:8])
    assert "score +3.0 (2)" in shown.stdout  # (8 + -2) / 2
    assert "ticket=ABC-1" in shown.stdout and "team=core" in shown.stdout and "env=dev" not in shown.stdout
    tagged = next(t for t in json.loads(run_cli("ls", "--json").stdout) if t["id"] == math_id)
    assert tagged["tags"] == {"team": "core", "ticket": "ABC-1"}  # env=dev was added, then removed
    for line in ("tool exponentiate(base=3, exponent=5) → 243", "tool multiply(first_int=243, second_int=36) → 8748",
                 "tool exponentiate(base=8748, exponent=2) → 76527504", "→ 3 to the fifth power is 243"):  # the answer is cropped at 120 columns
        assert line in shown.stdout
    assert "RunnableSequence" not in shown.stdout and "RunnableSequence" in run_cli("show", math_id, "--all").stdout

    full = run_cli("show", math_id, "--full").stdout
    assert "human: Take 3 to the fifth power" in full and "system: You are a helpful assistant" in full
    handle = full[full.index("LLM gpt-4o-mini"):].split("span ")[1].split()[0]
    one = json.loads(run_cli("show", math_id, "--span", handle).stdout)
    assert one["request"]["messages"] and one["response"]["chunks"]
    # Streamed: time to the first chunk and how many came (the usage chunk llmtrace asked for included).
    assert one["streamed"] and one["start_us"] < one["first_token_us"] <= one["end_us"]
    assert one["metadata"]["chunks"] == len(one["response"]["chunks"]) > 2

    doc = json.loads(run_cli("show", math_id, "--json").stdout)
    assert doc["trace"]["id"] == math_id and len(doc["spans"]) > 10
    assert all(s["parent_id"] is None or s["parent_id"] in {x["id"] for x in doc["spans"]} for s in doc["spans"])

    assert [t["name"] for t in json.loads(run_cli("ls", "--tag", "ticket=ABC-1", "--json").stdout)] == ["math_agent.py"]
    assert [t["name"] for t in json.loads(run_cli("ls", "--min-score", "0", "--json").stdout)] == ["math_agent.py"]
    assert [t["name"] for t in json.loads(run_cli("ls", "--max-score", "0", "--json").stdout)] == ["second"]

    c = json.loads(run_cli("cost", "--since", "1d", "--by", "tag:team", "--json").stdout)
    assert [(r["key"], r["calls"]) for r in c["rows"]] == [("core", 4)]
    text = run_cli("cost", "--since", "1d")
    assert "gpt-4o-mini-2024-07-18" in text.stdout and "total" in text.stdout

    assert run_cli("prune", "--older-than", "1d").code == 0  # nothing that old
    r = run_cli("prune", "--older-than", "0s")
    assert r.code == 2 and "--yes" in r.stderr
    assert len(json.loads(run_cli("ls", "--json").stdout)) == 2
    assert run_cli("rm", "last").code == 0
    assert [t["name"] for t in json.loads(run_cli("ls", "--json").stdout)] == ["math_agent.py"]
    assert run_cli("prune", "--older-than", "0s", "--yes").code == 0
    assert json.loads(run_cli("ls", "--json").stdout) == []
    db = open_store(llmtrace_home / "traces.db")
    assert [db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("spans", "payloads", "trace_tags", "feedback")] == [0, 0, 0, 0]


def test_read_commands_do_not_import_langchain(llmtrace_home):
    """Nor pydantic: typer ≥ 0.29 would load it to convert option values (0.1 s a command), see cli_values."""
    assert run_cli("run", str(AGENTS / "behaves_like_python.py")).code == 0
    probe = (
        "import sys, runpy\n"
        "for argv in (['ls'], ['show', 'last'], ['cost'], ['--help'], ['ls', '--json'], ['ls', '-n', '5', '--min-cost', '0.5'],\n"
        "             ['tag', 'last', 'env=dev'], ['feedback', 'last', '--score', '3'], ['show', '--help'],\n"
        "             ['view', 'last', '-o', '/dev/null'], ['diff', 'last', 'last'], ['show', '--timeline']):\n"
        "    sys.argv = ['llmtrace', *argv]\n"
        "    try:\n        runpy.run_module('llmtrace', run_name='__main__')\n    except SystemExit:\n        pass\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'langchain', 'langchain_core', 'langchain_openai', 'openai', 'langgraph', 'genai_prices', 'tiktoken', 'pydantic'})\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    p = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert "HEAVY []" in p.stderr, p.stderr[-500:]


def test_no_color_and_version(llmtrace_home):
    assert run_cli("--version").stdout.startswith("llmtrace 0.")
    assert run_cli("run", str(AGENTS / "behaves_like_python.py")).code == 0
    r = run_cli("ls", env={"NO_COLOR": "1"})
    assert "\x1b[" not in r.stdout


def test_long_output_is_paged_on_a_terminal(llmtrace_home, math_runs):
    import os
    import shutil

    if not shutil.which("script"):
        skip_unless_ci("needs util-linux `script` to give the command a terminal")
    use_home(math_runs["math_agent.py"].cold, llmtrace_home)
    env = {**os.environ, "PAGER": "echo PAGED-BY-PAGER; cat", "LINES": "10", "COLUMNS": "100"}
    cmd = f"{sys.executable} -m llmtrace show last --all"
    paged = subprocess.run(["script", "-qc", cmd, "/dev/null"], capture_output=True, text=True, env=env, timeout=HANG, stdin=subprocess.DEVNULL)
    assert paged.stdout.startswith("PAGED-BY-PAGER") and "AgentExecutor" in paged.stdout
    unpaged = subprocess.run(["script", "-qc", cmd + " --no-pager", "/dev/null"], capture_output=True, text=True, env=env, timeout=HANG, stdin=subprocess.DEVNULL)
    assert "PAGED-BY-PAGER" not in unpaged.stdout and "AgentExecutor" in unpaged.stdout
    piped = run_cli("show", "last", "--all", env={"PAGER": "echo PAGED-BY-PAGER; cat"})
    assert "PAGED-BY-PAGER" not in piped.stdout  # not a terminal: never paged
