"""Read commands at scale: ls, cost and show on a generated store of 100k traces and 1M spans.

Each command is a fresh process (what a user waits for), timed 5 times; medians reported.
`llmtrace --help` (cold start) is timed the same way, and `python -c pass` as the floor.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import PY, llmtrace, median, run  # noqa: E402
from bench.gen_store import generate  # noqa: E402


def measure(quick: bool = False, directory: Path | None = None) -> dict[str, float]:
    directory = directory or Path(tempfile.mkdtemp())
    traces, spans, big = (5000, 50_000, 1000) if quick else (100_000, 1_000_000, 5000)
    t0 = time.time()
    big_id = generate(directory, traces, spans, big)
    gen_s = time.time() - t0
    env = {"LLMTRACE_HOME": str(directory), "COLUMNS": "200"}
    commands = {
        "python_floor_s": [PY, "-c", "pass"],
        "help_s": llmtrace("--help"),
        "ls_s": llmtrace("ls"),
        "cost_30d_by_model_s": llmtrace("cost", "--since", "30d", "--by", "model"),
        "show_big_s": llmtrace("show", big_id[:8], "--no-pager"),
    }
    out: dict[str, float] = {"traces": traces, "spans": spans + big, "big_trace_spans": big, "generate_s": gen_s}
    timings: dict[str, list[float]] = {k: [] for k in commands}
    for _ in range(5):
        for k, cmd in commands.items():  # interleaved: noise hits every command alike
            timings[k].append(run(cmd, env))
    out.update({k: median(v) for k, v in timings.items()})
    out["db_mb"] = (directory / "traces.db").stat().st_size / 1048576
    return out


if __name__ == "__main__":
    for k, v in measure("--quick" in sys.argv).items():
        print(f"{k:22s} {v:12.3f}")
