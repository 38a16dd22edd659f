"""Per-call work in instructions: the figures of bench_peers.py that this machine's noise cannot move.

    python bench/bench_instructions.py              # 20 and 70 calls, every row but MLflow, the 200-step loop (~17 minutes)
    python bench/bench_instructions.py --calls 100 --rows llmtrace-nocache,openinference

Wall time on a shared machine moves by more than a tracer adds to a call (bench_peers.py: an untraced
call took 3.7–5.7 ms from round to round). The instructions a process executes do not: each row's
workload (bench/peer_workload.py, against the same scripted server) runs under valgrind's cachegrind,
which counts every instruction of every thread of the process (the server runs outside it), and the
count repeats to within a few thousand in billions (PYTHONHASHSEED fixed). Each row runs the loop
twice, with 20 and with 20 + N calls: the difference divided by N is the work of one call, with
interpreter start, imports and set-up cancelled out; the one-call script (`one`) gives start-up.

Then the developers' 200-step chat + tool loop (bench/agent_loop.py: each step one ChatOpenAI.invoke
and one tool call), under `python` and `llmtrace run --no-cache`, fresh home: issue #16's "≤ 1.03"
read in the traced process's instructions, start-up included (`--agent-steps 0` skips it).

The rows are bench_peers.py's (MLflow only when named: its migrations take many minutes under
valgrind). Figures are instructions; "traced ÷ untraced" is the ratio of per-call instructions, and
the µs figures convert instructions at the rate the untraced loop runs at natively on this machine
(its process's CPU time, fastest of three runs): an estimate, as different code runs at different
rates. valgrind counts user-space instructions only: system calls (file writes, memory maps) are
not in these figures. What each tracer stored is counted, so one that traced
nothing is not counted as cheap. Needs valgrind (`apt-get install valgrind`); without it, one line
saying so.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_peers import (
    LABELS,
    PEERS,
    TIMEOUT,
    WORK,
    bench_env,
    command,
    outcome,
    peer_python,
    pins,
)
from bench.common import PY, ROOT, llmtrace

ROWS = ("python", "noop", "llmtrace-nocache", "llmtrace-miss", "llmtrace-hit", "openinference")
# Calls in the shorter loop: enough that llmtrace's helper process starts in both loops (it starts
# once a run has spooled 16 records), so the difference is a long run's per-call work.
FIRST = 20
AGENT = str(ROOT / "bench" / "agent_loop.py")
AGENT_STEPS = 200
STARTS = 3  # one-call runs of a traced row, the median taken: when the garbage collector runs moves it by ~±30 M
_IREFS = re.compile(r"==(\d+)== I\s+refs:\s+([\d,]+)")
_PID = re.compile(r"==(\d+)==")  # the first process valgrind reports on: the command's own


def count(cmd: list[str], env: dict[str, str], home: str, row: str) -> dict[str, Any]:
    """Instructions executed by one process (all its threads) and by the processes it started (llmtrace's
    helper that stores spans), the JSON lines it printed, what it stored."""
    vg = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null", "--trace-children=yes"]
    p = subprocess.run([*vg, *cmd], env=env, cwd=home, capture_output=True, text=True, timeout=TIMEOUT * 4, check=False)
    found = _IREFS.findall(p.stderr)
    if p.returncode != 0 or not found:
        raise RuntimeError(f"{row}: {' '.join(cmd)} exited {p.returncode}: {p.stderr[-2000:]}")
    first = _PID.search(p.stderr)
    by_pid = {pid: int(n.replace(",", "")) for pid, n in found}
    own = by_pid[first.group(1)] if first and first.group(1) in by_pid else 0
    return {"instructions": sum(by_pid.values()), "own_instructions": own, **outcome(row, p.stdout, home)}


def measure(calls: int = 50, rows: tuple[str, ...] | None = None, create_venvs: bool = True,
            log: Any = None, agent_steps: int = AGENT_STEPS) -> dict[str, Any]:
    from llmtrace.mock import MockServer, Script

    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    if shutil.which("valgrind") is None:
        return {"skipped": "valgrind is not installed (apt-get install valgrind)"}
    wanted = ["python", *[r for r in (rows or ROWS) if r != "python"]]
    if "llmtrace-hit" in wanted and "llmtrace-miss" not in wanted:
        wanted.insert(wanted.index("llmtrace-hit"), "llmtrace-miss")  # the hit row replays what the miss row stored
    peer_py: dict[str, Path] = {}
    skipped: dict[str, str] = {}
    for peer in [r for r in wanted if r in PEERS]:
        py, why = peer_python(peer, create_venvs)
        if py is None:
            skipped[peer] = why
            wanted.remove(peer)
            say(f"  {LABELS[peer]}: skipped, {why}")
        else:
            peer_py[peer] = py
    env0 = {**bench_env(), "PYTHONHASHSEED": "0"}  # the same hashes every run: the same count
    scratch = Path(tempfile.mkdtemp(prefix="llmtrace-bench-instr-"))
    t0 = time.perf_counter()
    results: dict[str, dict[str, dict[str, Any]]] = {}
    try:
        subprocess.run([PY, "-m", "compileall", "-q", str(ROOT / "llmtrace"), str(ROOT / "bench")],
                       capture_output=True, check=False)
        with MockServer(Script.from_dict({"replies": [{"content": "fine"}]})) as chat:
            n = 0

            def once(row: str, workload: list[str], cache_dir: str) -> dict[str, Any]:
                nonlocal n
                n += 1
                home = scratch / f"p{n}"
                home.mkdir()
                env = {**env0, "OPENAI_BASE_URL": chat.base_url, "LLMTRACE_HOME": str(home),
                       "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}"}
                if row.startswith("llmtrace"):
                    env["LLMTRACE_TIMER_SCALE"] = f"{scale:.1f}"
                if row in PEERS:
                    env.pop("PYTHONPATH", None)
                try:
                    return count(command(row, workload, cache_dir, peer_py), env, str(home), row)
                finally:
                    shutil.rmtree(home, ignore_errors=True)

            # The untraced loop's native CPU time (the process's own: the server's share and the wait for
            # it left out): what an instruction costs here, for the µs estimates.
            native, native_wall = [], []
            for _ in range(3):
                p = subprocess.run([PY, WORK, "loop", "200"], env={**env0, "OPENAI_BASE_URL": chat.base_url},
                                   capture_output=True, text=True, timeout=TIMEOUT, check=True)
                seen = json.loads(p.stdout.strip().splitlines()[-1])
                native.append(seen["loop_cpu_s"] / 200)
                native_wall.append(seen["loop_s"] / 200)
            # llmtrace's timers (the copier's 200 ms linger, the in-flight publisher's 200 ms tick) run
            # on the wall clock: under valgrind, where a call takes ~30× as long, they would do ~30× the
            # work per call they do natively. Stretched by the slowdown the untraced loop shows, they
            # do per call what they do in a native run (LLMTRACE_TIMER_SCALE).
            scale = 1.0
            for row in wanted:
                results[row] = {
                    "short": once(row, ["loop", str(FIRST)], str(scratch / "cache-short")),
                    "long": once(row, ["loop", str(FIRST + calls)], str(scratch / "cache-long")),
                    "one": _median_run([once(row, ["one"], str(scratch / "cache-one"))
                                        for _ in range(1 if row == "python" else STARTS)]),
                }
                if row == "python":
                    slow = results[row]["long"]["loop_s"] / (FIRST + calls)
                    scale = max(1.0, slow / min(native_wall))
                say(f"  {row}: done ({time.perf_counter() - t0:.0f} s)")
            agent: dict[str, Any] = {}
            if agent_steps:
                for row, cmd in (("python", [PY, AGENT, str(agent_steps)]),
                                 ("llmtrace-nocache", llmtrace("run", "-q", "--no-cache", AGENT, str(agent_steps)))):
                    n += 1
                    home = scratch / f"p{n}"
                    home.mkdir()
                    env = {**env0, "OPENAI_BASE_URL": chat.base_url, "LLMTRACE_HOME": str(home),
                           "LLMTRACE_TIMER_SCALE": f"{scale:.1f}"}
                    agent[row] = count(cmd, env, str(home), row)
                say(f"  {agent_steps}-step agent loop: done ({time.perf_counter() - t0:.0f} s)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    out = summarize(results, calls, min(native), skipped, time.perf_counter() - t0)
    out["timer_scale"] = scale
    if agent:
        plain, traced = agent["python"], agent["llmtrace-nocache"]
        out["agent_loop"] = {"steps": agent_steps, "python": plain["own_instructions"],
                             "traced": traced["own_instructions"], "traced_all": traced["instructions"],
                             "ratio": traced["own_instructions"] / plain["own_instructions"],
                             "ratio_all": traced["instructions"] / plain["instructions"],
                             "spans": traced.get("spans"), "llm_spans": traced.get("llm_spans")}
    return out


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of median instructions (all processes); untraced python repeats to the instruction."""
    return sorted(runs, key=lambda r: r["instructions"])[len(runs) // 2]


def summarize(results: dict[str, dict[str, dict[str, Any]]], calls: int, native_s_per_call: float,
              skipped: dict[str, str], seconds: float) -> dict[str, Any]:
    per_call = {row: (r["long"]["instructions"] - r["short"]["instructions"]) / calls for row, r in results.items()}
    own_per_call = {row: (r["long"].get("own_instructions", r["long"]["instructions"])
                          - r["short"].get("own_instructions", r["short"]["instructions"])) / calls
                    for row, r in results.items()}
    base = per_call["python"]
    ns_per_instruction = native_s_per_call * 1e9 / base
    rows = {}
    for row, r in results.items():
        rows[row] = {
            "per_call": per_call[row],
            "added_per_call": per_call[row] - base,
            "ratio": per_call[row] / base,
            "us_added_estimate": (per_call[row] - base) * ns_per_instruction / 1000,
            # The traced program's own process (llmtrace's helper process left out).
            "own_per_call": own_per_call[row],
            "own_added_per_call": own_per_call[row] - base,
            "own_ratio": own_per_call[row] / base,
            "own_us_added_estimate": (own_per_call[row] - base) * ns_per_instruction / 1000,
            "startup_added": r["one"]["instructions"] - results["python"]["one"]["instructions"],
            "startup_ms_estimate": (r["one"]["instructions"] - results["python"]["one"]["instructions"])
            * ns_per_instruction / 1e6,
            "startup_own_added": r["one"]["own_instructions"] - results["python"]["one"]["own_instructions"],
            "llm_spans": r["long"].get("llm_spans"),
            "hits": r["long"].get("hits"),
            "expected_spans": FIRST + calls + 1,
        }
    return {"calls": calls, "rows": rows, "ns_per_instruction": ns_per_instruction,
            "native_us_per_call": native_s_per_call * 1e6, "skipped": skipped, "seconds": seconds, "pins": pins()}


def _startup(v: dict[str, Any], ns: float) -> str:
    text = f"{v['startup_added'] / 1e6:+,.0f} M (≈ {v['startup_ms_estimate']:+,.0f} ms)"
    own = v.get("startup_own_added", v["startup_added"])
    if own != v["startup_added"]:
        text += f"; the traced process {own / 1e6:+,.0f} M (≈ {own * ns / 1e6:+,.0f} ms)"
    return text


def report(r: dict[str, Any]) -> str:
    if "skipped" in r and "rows" not in r:
        return f"Not measured: {r['skipped']}."
    rows = r["rows"]
    head = ("| tracer | instructions per LLM call: the traced process | added per call | traced ÷ untraced "
            "| ≈ µs added per call | with llmtrace's helper process: added per call | traced ÷ untraced "
            "| ≈ µs added | start-up added (1-call script, all processes) | what it stored (longer loop) |\n"
            "|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for row, v in rows.items():
        if row == "python":
            lines.append(f"| {LABELS[row]} | {v['per_call'] / 1e6:,.2f} M | — | 1 | — | — | 1 | — | — | — |")
            continue
        spans = v["llm_spans"]
        kept = ("—" if spans is None else f"LLM spans {spans:,} of {v['expected_spans']:,}"
                + (f", cache hits {v['hits']:,}" if row == "llmtrace-hit" and v.get("hits") is not None else ""))
        own = v.get("own_per_call", v["per_call"])
        lines.append(f"| {LABELS[row]} | {own / 1e6:,.2f} M | {v.get('own_added_per_call', v['added_per_call']) / 1e6:+,.3f} M "
                     f"| {v.get('own_ratio', v['ratio']):.3f} | {v.get('own_us_added_estimate', v['us_added_estimate']):+,.0f} "
                     f"| {v['added_per_call'] / 1e6:+,.3f} M | {v['ratio']:.3f} | {v['us_added_estimate']:+,.0f} "
                     f"| {_startup(v, r['ns_per_instruction'])} | {kept} |")
    notes = [(f"{r['calls']} calls (the difference between loops of {FIRST} and {FIRST + r['calls']}); µs at "
              f"{r['ns_per_instruction']:.3f} ns an instruction, the untraced loop's native rate here "
              f"({r['native_us_per_call']:,.0f} µs of CPU a call, fastest of three runs); user-space "
              f"instructions only; \"with llmtrace's helper process\": every process the command started counted too "
              f"(valgrind --trace-children=yes; only llmtrace starts one); llmtrace's timers stretched "
              f"{r.get('timer_scale', 1):.0f}×, valgrind's slowdown of the untraced loop (LLMTRACE_TIMER_SCALE); "
              f"start-up: the median of {STARTS} one-call runs of each traced row; "
              f"pinned: {', '.join(r['pins'])}.")]
    notes += [f"{LABELS[k]}: skipped, {why}." for k, why in r["skipped"].items()]
    loop = r.get("agent_loop")
    if loop:
        notes.append(
            f"\n**{loop['steps']}-step chat + tool loop** (`bench/agent_loop.py {loop['steps']}`, one `ChatOpenAI.invoke` "
            f"and one tool call a step, fresh home): the traced process of `llmtrace run --no-cache` "
            f"{loop['traced'] / 1e6:,.0f} M instructions, `python` {loop['python'] / 1e6:,.0f} M: "
            f"**traced ÷ untraced {loop['ratio']:.4f}** (target ≤ 1.03), start-up included; with the helper "
            f"process {loop['traced_all'] / 1e6:,.0f} M, {loop['ratio_all']:.3f}. Spans stored: {loop['spans']:,} "
            f"({loop['llm_spans']:,} LLM) of {2 * loop['steps']:,}.")
    return "\n".join(lines) + "\n\n" + "\n".join(notes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=50, help="calls between the two loops (default 50)")
    ap.add_argument("--rows", help=f"comma-separated rows (default: {','.join(ROWS)}; also: mlflow)")
    ap.add_argument("--agent-steps", type=int, default=AGENT_STEPS,
                    help=f"steps of the agent loop measured after the rows (default {AGENT_STEPS}; 0: none)")
    ap.add_argument("--json", type=Path, help="also write the raw figures here")
    a = ap.parse_args()
    rows = tuple(x.strip() for x in a.rows.split(",")) if a.rows else None
    unknown = [x for x in rows or () if x not in (*ROWS, *PEERS)]
    if unknown:
        ap.error(f"unknown row {', '.join(unknown)}")
    r = measure(a.calls, rows, agent_steps=a.agent_steps)
    if a.json:
        a.json.write_text(json.dumps(r, indent=2))
    print(report(r))


if __name__ == "__main__":
    main()
