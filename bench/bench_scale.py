"""Read commands at scale: ls, cost and show on a generated store of 100k traces and 1M spans, and
show and export of a long run's trace (20,000 top-level steps, 200,000 spans) in a store of its own.

Each command is a fresh process (what a user waits for), timed 5 times; medians reported.
`llmtrace --help` (cold start) is timed the same way, and `python -c pass` as the floor. Export of
the long trace runs once (it writes every span: tens of seconds), its peak RSS read from the child's
resource usage.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import PY, ROOT, llmtrace, median, run  # noqa: E402
from bench.gen_store import generate, generate_steps  # noqa: E402


def peak_rss(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MiB) of one command (output discarded)."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)  # the child's own rusage, not the sum over all children
        elapsed = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"{' '.join(cmd)} failed: {err.read().decode(errors='replace')[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024  # Linux: KiB


def measure(quick: bool = False, directory: Path | None = None) -> dict[str, float]:
    directory = directory or Path(tempfile.mkdtemp())
    traces, spans, big, steps = (5000, 50_000, 1000, 2000) if quick else (100_000, 1_000_000, 5000, 20_000)
    t0 = time.time()
    big_id = generate(directory, traces, spans, big)
    gen_s = time.time() - t0
    long_dir = directory / "long-run"
    t0 = time.time()
    long_id = generate_steps(long_dir, steps)
    gen_long_s = time.time() - t0
    env = {"LLMTRACE_HOME": str(directory), "COLUMNS": "200"}
    long_env = {**env, "LLMTRACE_HOME": str(long_dir)}
    commands = {
        "python_floor_s": ([PY, "-c", "pass"], env),
        "help_s": (llmtrace("--help"), env),
        "ls_s": (llmtrace("ls"), env),
        # Search (FTS5): a word in one span of the 1M ("step 4321": the big trace), and one in every trace.
        "ls_grep_rare_s": (llmtrace("ls", "--grep", "step 4321"), env),
        "ls_grep_common_s": (llmtrace("ls", "--grep", "question"), env),
        "cost_30d_by_model_s": (llmtrace("cost", "--since", "30d", "--by", "model"), env),
        "show_big_s": (llmtrace("show", big_id[:8], "--no-pager"), env),
        "show_long_s": (llmtrace("show", long_id[:8], "--no-pager"), long_env),  # folded: first and last 10 steps
    }
    out: dict[str, float] = {"traces": traces, "spans": spans + big, "big_trace_spans": big, "generate_s": gen_s,
                             "long_trace_steps": steps, "long_trace_spans": steps * 10, "generate_long_s": gen_long_s}
    timings: dict[str, list[float]] = {k: [] for k in commands}
    for _ in range(5):
        for k, (cmd, e) in commands.items():  # interleaved: noise hits every command alike
            timings[k].append(run(cmd, e))
    out.update({k: median(v) for k, v in timings.items()})
    out["db_mb"] = (directory / "traces.db").stat().st_size / 1048576
    out["export_big_s"], out["export_big_peak_mb"] = peak_rss(llmtrace("export", big_id[:8], "-o", os.devnull), env)
    out["export_long_s"], out["export_long_peak_mb"] = peak_rss(llmtrace("export", long_id[:8], "-o", os.devnull), long_env)
    out["export_long_jsonl_s"], out["export_long_jsonl_peak_mb"] = peak_rss(
        llmtrace("export", long_id[:8], "--format", "jsonl", "-o", os.devnull), long_env)
    return out


if __name__ == "__main__":
    for k, v in measure("--quick" in sys.argv).items():
        print(f"{k:26s} {v:12.3f}")
