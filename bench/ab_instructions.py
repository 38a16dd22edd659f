"""This checkout against another revision of llmtrace, in instructions: the user-visible rows, A/B.

    python bench/ab_instructions.py 374d873              # ~25 minutes
    python bench/ab_instructions.py HEAD~3 --steps 200

Wall and CPU time on a shared machine move by more than a restructuring changes (two runs of the same
200-step loop differ by up to ±25 % here). The instructions a process executes do not, so each row runs
under valgrind's cachegrind (bench_instructions.py's counter: every thread of the run and of the helper
process it starts), with LLMTRACE_TIMER_SCALE stretching llmtrace's timers by valgrind's slowdown.

Both revisions run on the same interpreter and the same installed packages: B is a detached worktree of
REV put first on PYTHONPATH. Two virtualenvs would not compare llmtrace alone: LangChain imports tornado
and psutil where they are installed (tenacity and langsmith do), ~4 % of a run's start-up.

Rows: start-up (`run --no-cache`, one step, median of three); per step of bench/agent_loop.py (one
ChatOpenAI call and one tool call) with the cache off, every call a miss (a fresh cache folder) and every
call a hit, each the difference between STEPS + 20 and 20 steps divided by STEPS; `ls` and `show last`
on the store those runs made. Needs valgrind.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_instructions import count
from bench.bench_peers import bench_env
from bench.common import PY, ROOT

AGENT = str(ROOT / "bench" / "agent_loop.py")
FIRST = 20


def measure(trees: dict[str, Path], steps: int, say: Any) -> dict[str, dict[str, float]]:
    from llmtrace.mock import MockServer, Script

    scratch = Path(tempfile.mkdtemp(prefix="llmtrace-ab-"))
    out: dict[str, dict[str, float]] = {name: {} for name in trees}
    try:
        with MockServer(Script.from_dict({"replies": [{"content": "fine"}]})) as chat:
            for name, tree in trees.items():
                home = scratch / name
                home.mkdir(mode=0o700)
                env = {**bench_env(), "PYTHONHASHSEED": "0", "PYTHONPATH": str(tree), "LLMTRACE_HOME": str(home),
                       "OPENAI_BASE_URL": chat.base_url, "LLMTRACE_TIMER_SCALE": "30"}

                def n(*args: str) -> float:
                    return float(count([PY, "-m", "llmtrace", *args], env, str(home), name)["instructions"])

                def per_step(*opts: str, fresh_cache: bool = False) -> float:
                    def loop(k: int) -> float:
                        extra = ["--cache-dir", tempfile.mkdtemp(dir=scratch)] if fresh_cache else []
                        return n("run", "-q", *opts, *extra, AGENT, str(k))
                    return (loop(FIRST + steps) - loop(FIRST)) / steps

                row = out[name]
                row["start-up (run --no-cache, 1 step)"] = statistics.median(
                    n("run", "-q", "--no-cache", AGENT, "1") for _ in range(3))
                row["cache off, per step"] = per_step("--no-cache")
                row["every call a miss, per step"] = per_step(fresh_cache=True)
                subprocess.run([PY, "-m", "llmtrace", "run", "-q", AGENT, str(FIRST + steps)], env=env,
                               capture_output=True, check=True)  # the answers the hit row replays
                row["every call a hit, per step"] = per_step()
                row["ls"] = n("ls")
                row["show last"] = n("show", "last", "--no-pager")
                say(f"  {name}: done")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rev", help="the revision to compare this checkout with (B)")
    ap.add_argument("--steps", type=int, default=500, help="steps between the short and the long loop")
    a = ap.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 1
    other = Path(tempfile.mkdtemp(prefix="llmtrace-ab-rev-"))
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(other), a.rev],
                   capture_output=True, check=True)
    try:
        trees = {"A": ROOT, "B": other}
        for tree in trees.values():
            subprocess.run([PY, "-m", "compileall", "-q", str(tree / "llmtrace")], capture_output=True, check=False)
        r = measure(trees, a.steps, lambda m: print(m, file=sys.stderr, flush=True))
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(other)], capture_output=True)
    print(f"A = this checkout, B = {a.rev}; instructions (millions), same interpreter and packages")
    print(f"{'row':38} {'A':>10} {'B':>10} {'A/B':>7}")
    for row in r["A"]:
        print(f"{row:38} {r['A'][row] / 1e6:10.2f} {r['B'][row] / 1e6:10.2f} {r['A'][row] / r['B'][row]:7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
