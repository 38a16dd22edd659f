"""llmtrace beside the peers: the same LangChain workloads untraced, under llmtrace and under other tracers.

    python bench/bench_peers.py                        # full: 1,000-call loop, seed agent ×20, start-up; 3 rounds
    python bench/bench_peers.py --calls 300 --rounds 5
    python bench/bench_peers.py --quick                # tiny sizes, one round, llmtrace's rows only

Rows (every row runs the same script, bench/peer_workload.py, against one scripted server with no
latency, `llmtrace.mock.MockServer`: one write per reply, TCP_NODELAY):

- `python` — untraced, in the interpreter running this bench (llmtrace's environment);
- no-op callback handler — a LangChain callback that does nothing, registered for the whole process
  as llmtrace registers its own: the floor LangChain's callback machinery puts under any callback
  tracer (bench/peer_wrap.py);
- `llmtrace run --no-cache`; `llmtrace run` with the cache on and every call a miss (a fresh cache
  folder each round); `llmtrace run` with every call a hit (a second run on the folder the miss row
  of the same round filled);
- OpenInference (openinference-instrumentation-langchain, OpenTelemetry SDK, SimpleSpanProcessor
  into an InMemorySpanExporter) and MLflow (`mlflow.langchain.autolog()`, SQLite tracking store),
  each in a venv of its own made here with uv under bench/.venvs (or $LLMTRACE_BENCH_VENVS), with
  langchain-core, langchain-openai, langchain-classic, openai, httpx and pydantic pinned to the
  versions this interpreter has. A peer that cannot be installed is skipped with one line saying
  why. `--quick` runs llmtrace's rows only (no peer, no venv made).

Workloads: `loop` (one warm-up call, then N `ChatOpenAI.invoke` with distinct prompts, timed inside
the script), `agent` (the seed math AgentExecutor of sample_agents/math_agent.py, one warm-up run
then R runs in the same process, 4 LLM calls each, timed inside), `one` (a one-call script, timed
as the whole process from outside: start-up). Every process gets a fresh LLMTRACE_HOME (and MLflow
store). Rounds are interleaved: each round runs every row of every workload, in turn. Figures are
medians over the rounds with min–max; ratios and differences to `python` are taken round by round.
What each tracer stored is counted after every loop and agent process (llmtrace: its SQLite store;
OpenInference: the in-memory exporter; MLflow: traces and spans in its store; the no-op handler:
the runs it saw end), so a tracer that dropped spans is seen, not counted as fast.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import PY, ROOT, llmtrace

WORK = str(ROOT / "bench" / "peer_workload.py")
WRAP = str(ROOT / "bench" / "peer_wrap.py")
PINNED = ("langchain-core", "langchain-openai", "langchain-classic", "openai", "httpx", "pydantic")
PEERS = {
    "openinference": ("OpenInference + OTel SDK, in-memory", ["openinference-instrumentation-langchain", "opentelemetry-sdk"]),
    "mlflow": ("MLflow `mlflow.langchain.autolog()` (sqlite)", ["mlflow"]),
}
ROWS = ("python", "noop", "llmtrace-nocache", "llmtrace-miss", "llmtrace-hit", "openinference", "mlflow")
LABELS = {
    "python": "`python script.py` (untraced)",
    "noop": "no-op LangChain callback handler (the floor)",
    "llmtrace-nocache": "`llmtrace run --no-cache`",
    "llmtrace-miss": "`llmtrace run` (cache on, every call a miss)",
    "llmtrace-hit": "`llmtrace run` (cache on, every call a hit)",
    **{k: v[0] for k, v in PEERS.items()},
}
TIMEOUT = 900  # seconds for one process: only a hang takes this long


def venv_root() -> Path:
    return Path(os.environ.get("LLMTRACE_BENCH_VENVS") or ROOT / "bench" / ".venvs")


def pins(names: tuple[str, ...] = PINNED) -> list[str]:
    out = []
    for name in names:
        try:
            out.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def peer_python(peer: str, create: bool, packages: list[str] | None = None,
                pinned: tuple[str, ...] = PINNED) -> tuple[Path | None, str]:
    """The peer venv's interpreter (made if `create` and missing), or None and why not. `packages`:
    what to install (default PEERS[peer]'s), beside `pinned` at this interpreter's versions."""
    reqs = [*(PEERS[peer][1] if packages is None else packages), *pins(pinned)]
    tag = hashlib.sha256(f"{sys.version_info[:2]} {' '.join(reqs)}".encode()).hexdigest()[:10]
    venv = venv_root() / f"{peer}-{tag}"
    py = venv / "bin" / "python"
    if (venv / ".ready").exists():
        return py, ""
    if not create:
        return None, f"no venv at {venv} (a full run creates it; --quick never does)"
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    if Path(uv).exists():
        steps = [[uv, "venv", "-q", "-p", sys.executable, str(venv)],
                 [uv, "pip", "install", "-q", "--compile-bytecode", "--python", str(py), *reqs]]
    else:
        steps = [[sys.executable, "-m", "venv", str(venv)],
                 [str(py), "-m", "pip", "install", "-q", *reqs],
                 [str(py), "-m", "compileall", "-q", str(venv / "lib")]]
    for cmd in steps:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, check=False)
        if p.returncode != 0:
            last = (p.stderr.strip() or p.stdout.strip()).splitlines()[-1:] or [f"exit code {p.returncode}"]
            return None, f"cannot be installed ({' '.join(reqs)}): {last[0][:300]}"
    (venv / ".ready").write_text(" ".join(reqs) + "\n")
    return py, ""


def command(row: str, workload: list[str], cache_dir: str, peer_py: dict[str, Path]) -> list[str]:
    if row == "python":
        return [PY, WORK, *workload]
    if row == "noop":
        return [PY, WRAP, "noop", WORK, *workload]
    if row == "llmtrace-nocache":
        return llmtrace("run", "-q", "--no-cache", WORK, *workload)
    if row in ("llmtrace-miss", "llmtrace-hit"):
        return llmtrace("run", "-q", "--cache-dir", cache_dir, WORK, *workload)
    return [str(peer_py[row]), WRAP, row, WORK, *workload]


def bench_env() -> dict[str, str]:
    """This environment for the rows' processes: byte-code compiled once, then reused; a fake key; no
    tracer or telemetry of the user's switched on underneath."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update({"OPENAI_API_KEY": "bench", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"})
    for var in ("LLMTRACE_TRACE_ID", "OPENAI_API_BASE", "OTEL_EXPORTER_OTLP_ENDPOINT", "LANGCHAIN_TRACING_V2",
                "LANGSMITH_TRACING"):
        env.pop(var, None)
    return env


def outcome(row: str, stdout: str, home: str) -> dict[str, Any]:
    """The JSON lines a process printed, and what its tracer stored."""
    out: dict[str, Any] = {}
    for line in stdout.splitlines():
        if line.startswith("{"):
            out.update(json.loads(line))
    out.update(stored(row, home))
    return out


def run_one(row: str, cmd: list[str], env: dict[str, str], home: str) -> dict[str, Any]:
    """Run one process; its wall time, the JSON lines it printed, and what its tracer stored."""
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, cwd=home, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{row}: {' '.join(cmd)} exited {p.returncode}: {p.stderr[-2000:]}")
    return {"wall_s": wall, **outcome(row, p.stdout, home)}


def stored(row: str, home: str) -> dict[str, Any]:
    """Spans the tracer kept, read from its store after the process (llmtrace, MLflow)."""
    if row.startswith("llmtrace"):
        db = Path(home) / "traces.db"
        if not db.exists():
            return {"spans": 0, "llm_spans": 0, "hits": 0}
        with sqlite3.connect(db) as c:
            n, llm, hits = c.execute("SELECT count(*), coalesce(sum(kind = 'llm'), 0), "
                                     "coalesce(sum(kind = 'llm' AND cache_hit IS NOT NULL), 0) FROM spans").fetchone()
        return {"spans": n, "llm_spans": llm, "hits": hits}
    if row == "mlflow":
        db = Path(home) / "mlflow.db"
        if not db.exists():
            return {"spans": 0, "llm_spans": 0, "traces": 0}
        with sqlite3.connect(db) as c:
            traces = c.execute("SELECT count(*) FROM trace_info").fetchone()[0]
            cols = {r[1] for r in c.execute("PRAGMA table_info(spans)")}
            n = c.execute("SELECT count(*) FROM spans").fetchone()[0] if cols else 0
            llm = (c.execute("SELECT count(*) FROM spans WHERE type IN ('CHAT_MODEL', 'LLM')").fetchone()[0]
                   if "type" in cols else 0)
        return {"spans": n, "llm_spans": llm, "traces": traces}
    return {}


def spread(xs: list[float]) -> dict[str, float]:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)} if xs else {}


def measure(quick: bool = False, calls: int | None = None, agent_runs: int | None = None,
            rounds: int | None = None, create_venvs: bool | None = None, only: tuple[str, ...] | None = None,
            log: Any = None) -> dict[str, Any]:
    """`only`: which of ROWS to run (default all; `python` always runs, and the hit row needs the
    miss row); `create_venvs`: make missing peer venvs (default: not with `quick`)."""
    from llmtrace.mock import MockServer, Script

    calls = calls or (5 if quick else 1000)
    agent_runs = agent_runs or (1 if quick else 20)
    rounds = rounds or (1 if quick else 3)
    create = (not quick) if create_venvs is None else create_venvs
    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))

    wanted = set(ROWS if only is None else ("python", *only))
    if "llmtrace-hit" in wanted:
        wanted.add("llmtrace-miss")
    rows = [r for r in ROWS if r not in PEERS and r in wanted]
    peer_py: dict[str, Path] = {}
    skipped: dict[str, str] = {}
    for peer in (p for p in PEERS if p in wanted):
        if quick and only is None:
            skipped[peer] = "not run by --quick (name it with `only` to run it from an existing venv)"
            continue
        t0 = time.perf_counter()
        py, why = peer_python(peer, create)
        if py is None:
            skipped[peer] = why
            say(f"  {LABELS[peer]}: skipped, {why}")
        else:
            peer_py[peer] = py
            rows.append(peer)
            if time.perf_counter() - t0 > 1:
                say(f"  {LABELS[peer]}: venv made in {time.perf_counter() - t0:.0f} s")

    workloads = {"loop": ["loop", str(calls)], "agent": ["agent", str(agent_runs)], "one": ["one"]}
    results: dict[str, dict[str, list[dict[str, Any]]]] = {w: {r: [] for r in rows} for w in workloads}
    base_env = bench_env()
    scratch = Path(tempfile.mkdtemp(prefix="llmtrace-bench-peers-"))
    t_start = time.perf_counter()
    try:
        with MockServer(Script.from_dict({"replies": [{"content": "fine"}]})) as chat, \
                MockServer(Script.load(ROOT / "sample_agents" / "math_agent.mock.json")) as agent:
            servers = {"loop": chat, "agent": agent, "one": chat}
            # MLflow's first use of a store creates ~60 tables through its migrations (seconds): the
            # loop and agent processes start from a copy of a store made once, the start-up row from none.
            mlflow_store = None
            if "mlflow" in peer_py:
                made = scratch / "mlflow-store.db"
                env = {**base_env, "MLFLOW_TRACKING_URI": f"sqlite:///{made}"}
                env.pop("PYTHONPATH", None)
                subprocess.run([str(peer_py["mlflow"]), "-c", "import mlflow; mlflow.set_experiment('bench')"],
                               env=env, cwd=str(scratch), capture_output=True, timeout=TIMEOUT, check=False)
                mlflow_store = made if made.exists() else None
            n = 0

            def once(workload: str, row: str, cache_dir: str) -> dict[str, Any]:
                nonlocal n
                n += 1
                home = scratch / f"p{n}"
                home.mkdir()
                env = {**base_env, "OPENAI_BASE_URL": servers[workload].base_url, "LLMTRACE_HOME": str(home),
                       "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}"}
                if row in PEERS:  # nothing of llmtrace's in a peer's process
                    env.pop("PYTHONPATH", None)
                if row == "mlflow" and workload != "one" and mlflow_store:  # start-up is measured on "one"
                    shutil.copy(mlflow_store, home / "mlflow.db")
                r = run_one(row, command(row, workloads[workload], cache_dir, peer_py), env, str(home))
                shutil.rmtree(home, ignore_errors=True)
                return r

            # Byte-code for llmtrace and the scripts (peer venvs are compiled when made), so no
            # row pays for compiling; then one unmeasured start of each row fills the page cache.
            subprocess.run([PY, "-m", "compileall", "-q", str(ROOT / "llmtrace"), str(ROOT / "bench"),
                            str(ROOT / "sample_agents")], capture_output=True, check=False)
            for row in rows if not quick else ():
                if row != "mlflow":
                    once("one", row, str(scratch / "warm-cache"))
            for rnd in range(rounds):
                for workload in workloads:
                    cache_dir = str(scratch / f"cache-{rnd}-{workload}")  # the miss row fills it, the hit row reads it
                    for row in rows:
                        results[workload][row].append(once(workload, row, cache_dir))
                say(f"  round {rnd + 1}/{rounds} done ({time.perf_counter() - t_start:.0f} s)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return summarize(results, rows, skipped, calls, agent_runs, rounds, time.perf_counter() - t_start)


def summarize(results: dict[str, dict[str, list[dict[str, Any]]]], rows: list[str], skipped: dict[str, str],
              calls: int, agent_runs: int, rounds: int, seconds: float) -> dict[str, Any]:
    loop, agent, one = results["loop"], results["agent"], results["one"]
    out: dict[str, Any] = {"calls": calls, "agent_runs": agent_runs, "agent_calls": 4 * agent_runs, "rounds": rounds,
                           "seconds": seconds, "skipped": skipped, "pins": pins(), "rows": {}}
    for row in rows:
        pairs = list(zip(loop[row], loop["python"]))
        agent_pairs = list(zip(agent[row], agent["python"]))
        one_pairs = list(zip(one[row], one["python"]))
        last_loop, last_agent = loop[row][-1], agent[row][-1]
        out["rows"][row] = {
            "loop_s": spread([t["loop_s"] for t, _ in pairs]),
            "ratio": spread([t["loop_s"] / p["loop_s"] for t, p in pairs]),
            "us_per_call": spread([t["loop_s"] / calls * 1e6 for t, _ in pairs]),
            "us_added": spread([(t["loop_s"] - p["loop_s"]) / calls * 1e6 for t, p in pairs]),
            "cpu_us_added": spread([(t["loop_cpu_s"] - p["loop_cpu_s"]) / calls * 1e6 for t, p in pairs]),
            "agent_ms_per_call": spread([t["loop_s"] / (4 * agent_runs) * 1e3 for t, _ in agent_pairs]),
            "agent_ms_added": spread([(t["loop_s"] - p["loop_s"]) / (4 * agent_runs) * 1e3 for t, p in agent_pairs]),
            "request_us": spread([t["request_us"] for t in loop[row] if t.get("request_us") is not None]),
            "startup_s": spread([t["wall_s"] for t, _ in one_pairs]),
            "startup_ms_added": spread([(t["wall_s"] - p["wall_s"]) * 1e3 for t, p in one_pairs]),
            # what the tracer stored, in each round (loop: N + 1 LLM calls; agent: (R + 1) × 4)
            "loop_llm_spans": [t.get("llm_spans") for t in loop[row]],
            "loop_spans": [t.get("spans") for t in loop[row]],
            "loop_traces": [t.get("traces") for t in loop[row]],
            "loop_hits": [t.get("hits") for t in loop[row]],
            "agent_llm_spans": [t.get("llm_spans") for t in agent[row]],
            "agent_spans": [t.get("spans") for t in agent[row]],
            "agent_traces": [t.get("traces") for t in agent[row]],
            "loop_last": {k: v for k, v in last_loop.items() if k != "workload"},
            "agent_last": {k: v for k, v in last_agent.items() if k != "workload"},
        }
    return out


# -- the report -----------------------------------------------------------------------------------

def _fmt(s: dict[str, float], spec: str, scale: float = 1.0, signed: bool = False) -> str:
    if not s:
        return "—"
    f = (lambda v: format(v * scale, "+" + spec)) if signed else (lambda v: format(v * scale, spec))
    return f"{f(s['median'])} ({f(s['min'])} – {f(s['max'])})" if s["min"] != s["max"] else f(s["median"])


def _stored(r: dict[str, Any], row: str, expected_loop: int, expected_agent: int) -> str:
    def one(values: list[Any], expected: int) -> str:
        vals = [v for v in values if v is not None]
        if not vals:
            return "—"
        lo, hi = min(vals), max(vals)
        text = f"{lo:,}" if lo == hi else f"{lo:,}–{hi:,}"
        return f"{text} of {expected:,}" + (" (all)" if lo == expected else "")

    if row == "python":
        return "—"
    what = "LLM runs seen" if row == "noop" else ("traces" if row == "mlflow" else "LLM spans")
    loop_vals = r["loop_traces"] if row == "mlflow" else r["loop_llm_spans"]
    agent_vals = r["agent_traces"] if row == "mlflow" else r["agent_llm_spans"]
    exp_agent = expected_agent // 4 if row == "mlflow" else expected_agent  # MLflow: one trace per agent run
    text = f"{what}: loop {one(loop_vals, expected_loop)}; agent {one(agent_vals, exp_agent)}"
    if row == "llmtrace-hit":
        hits = [v for v in r["loop_hits"] if v is not None]
        text += f"; cache hits {min(hits):,}" if hits else ""
    return text


def table(r: dict[str, Any]) -> str:
    calls, runs = r["calls"], r["agent_runs"]
    exp_loop, exp_agent = calls + 1, 4 * (runs + 1)
    head = (f"| tracer | loop of {calls:,} `ChatOpenAI.invoke`: traced ÷ untraced | µs added per LLM call "
            f"(start-up excluded) | CPU µs added per LLM call | µs per call, whole | start-up added (1-call script) | seed agent ×{runs}: "
            f"ms per LLM call | what it stored (warm-up included) |")
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for row, s in r["rows"].items():
        base = row == "python"
        lines.append(" | ".join([
            f"| {LABELS[row]}",
            "1 (baseline)" if base else _fmt(s["ratio"], ".2f"),
            "—" if base else _fmt(s["us_added"], ",.0f", signed=True),
            "—" if base else _fmt(s["cpu_us_added"], ",.0f", signed=True),
            _fmt(s["us_per_call"], ",.0f"),
            f"{_fmt(s['startup_s'], '.2f')} s (whole process)" if base else _fmt(s["startup_ms_added"], ",.0f", signed=True) + " ms",
            _fmt(s["agent_ms_per_call"], ".2f"),
            _stored(s, row, exp_loop, exp_agent) + " |",
        ]))
    for peer, why in r["skipped"].items():
        lines.append(f"| {LABELS[peer]} | skipped: {why} | | | | | | |")
    return "\n".join(lines)


def targets(r: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The issue's targets for llmtrace, as (measure, result, target, verdict). A target is met when
    every round met it, missed when none did; otherwise the spread crosses it and says no more."""
    rows = r["rows"]

    def verdict(s: dict[str, float], target: float) -> str:
        if not s:
            return ""
        if s["max"] <= target:
            return "met"
        return "**missed**" if s["min"] > target else "unclear: the rounds fall on both sides"

    def get(row: str, key: str) -> dict[str, float]:
        return rows.get(row, {}).get(key, {})

    calls = r["calls"]
    out = []
    for row, target in (("llmtrace-miss", 500), ("llmtrace-nocache", 350)):
        s = get(row, "us_added")
        out.append((f"µs added per LLM call, {LABELS[row]}, {calls:,}-call loop",
                    f"{_fmt(s, ',.0f', signed=True)} µs", f"≤ {target} µs", verdict(s, target)))
    for row in ("llmtrace-nocache", "llmtrace-miss"):
        s = get(row, "ratio")
        out.append((f"traced ÷ untraced, {LABELS[row]}, {calls:,}-call zero-latency loop",
                    _fmt(s, ".2f"), "≤ 1.10", verdict(s, 1.10)))
    for row in ("llmtrace-nocache", "llmtrace-miss"):
        s = get(row, "startup_ms_added")
        out.append((f"start-up over `python script.py`, {LABELS[row]} (1-call script, fresh home)",
                    f"{_fmt(s, ',.0f', signed=True)} ms", "≤ 50 ms", verdict(s, 50)))
    s = get("llmtrace-hit", "request_us")
    live = get("python", "request_us")
    out.append((f"cache hit: from the SDK call to the answer (request(), median per call; a live call to the "
                f"local server: {_fmt(live, ',.0f')} µs)", f"{_fmt(s, ',.0f')} µs", "≤ 150 µs", verdict(s, 150)))
    s = get("llmtrace-hit", "us_per_call")
    out.append(("cache hit: a whole `ChatOpenAI.invoke` (LangChain's own work included)", f"{_fmt(s, ',.0f')} µs",
                "—", ""))
    return out


def report(r: dict[str, Any]) -> str:
    lines = [table(r), "", "| llmtrace target (issue #16) | result: median (min – max) | target | |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in targets(r)]
    lines += ["", (f"{r['rounds']} interleaved round(s); median (min – max) over the rounds; pinned in every venv: "
                   f"{', '.join(r['pins'])}.")]
    return "\n".join(lines)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes, one round, llmtrace's rows only")
    ap.add_argument("--calls", type=int, help="LLM calls in the loop (default 1,000; 5 with --quick)")
    ap.add_argument("--agent-runs", type=int, help="agent runs in one process (default 20)")
    ap.add_argument("--rounds", type=int, help="interleaved rounds (default 3)")
    ap.add_argument("--json", type=Path, help="also write the raw figures here")
    a = ap.parse_args()
    res = measure(a.quick, a.calls, a.agent_runs, a.rounds)
    if a.json:
        a.json.write_text(json.dumps(res, indent=1))
    print(report(res))
    print(f"\n{res['seconds']:.0f} s")
