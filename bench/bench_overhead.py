"""Traced ÷ untraced: the same 200-step agent loop run plain and under `llmtrace run --no-cache`.

The scripted server answers with zero latency, so the ratio shows llmtrace's cost at its most
visible. Runs alternate (plain, traced, plain, …) so machine noise hits both alike.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import PY, ROOT, llmtrace, median, run  # noqa: E402


def measure(quick: bool = False) -> dict[str, float]:
    from llmtrace.mock import MockServer

    steps = "40" if quick else "200"
    repeats = 2 if quick else 5
    home = tempfile.mkdtemp()
    plain, traced = [], []
    with MockServer() as server:
        env = {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "bench", "LLMTRACE_HOME": home}
        script = str(ROOT / "bench" / "agent_loop.py")
        run([PY, script, "2"], env)  # warm the file cache
        for _ in range(repeats):
            plain.append(run([PY, script, steps], env))
            traced.append(run(llmtrace("run", "-q", "--no-cache", script, steps), env))
        requests = server.stats.requests
    ratios = sorted(t / p for t, p in zip(traced, plain))
    return {
        "steps": int(steps),
        "plain_s": median(plain),
        "traced_s": median(traced),
        "ratio": median(ratios),
        "added_ms_per_step": (median(traced) - median(plain)) / int(steps) * 1000,
        "requests": requests,
    }


if __name__ == "__main__":
    for k, v in measure("--quick" in sys.argv).items():
        print(f"{k:20s} {v:10.3f}")
