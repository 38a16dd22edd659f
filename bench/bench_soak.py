"""Long runs: memory, cost per call and spool size at checkpoints over a long chat loop.

    python bench/bench_soak.py                       # plain loop, 50,000 calls per mode
    python bench/bench_soak.py --kind agent --calls 5000
    python bench/bench_soak.py --kind gather --calls 20000

Three modes side by side against the same scripted server: untraced `python`, `llmtrace run
--no-cache`, `llmtrace run` (cache on; every prompt differs, so every call is recorded). The
figures: RSS at each checkpoint, growth from the 2,000-call checkpoint to the last, µs per call
at the first and last checkpoints, and the largest spool seen. The workloads are in soak_loop.py
(a plain ChatOpenAI.invoke loop, the math AgentExecutor run in a loop, asyncio.gather batches).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import PY, ROOT, llmtrace  # noqa: E402

LOOP = str(ROOT / "bench" / "soak_loop.py")


def soak(cmd: list[str], env: dict[str, str]) -> list[dict[str, float]]:
    p = subprocess.run(cmd, env={**os.environ, **env}, cwd=str(ROOT), capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {p.stderr[-2000:]}")
    return [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]


def measure(quick: bool = False, calls: int | None = None, kind: str = "plain") -> dict[str, dict[str, float]]:
    from llmtrace.mock import MockServer, Script

    calls = calls or (2000 if quick else 50_000)
    every = max(500, calls // 25) // 10 * 10
    base = 2000 if calls >= 4000 else every
    out: dict[str, dict[str, float]] = {}
    script = (Script.load(ROOT / "sample_agents" / "math_agent.mock.json") if kind == "agent"
              else Script.from_dict({"replies": [{"content": "fine"}]}))
    with MockServer(script) as server:
        env = {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "bench"}
        modes = {
            "python": [PY, LOOP],
            "llmtrace --no-cache": llmtrace("run", "-q", "--no-cache", LOOP),
            "llmtrace (cache on)": llmtrace("run", "-q", LOOP),
        }
        for name, cmd in modes.items():
            home = tempfile.mkdtemp()
            points = soak([*cmd, kind, str(calls), str(every)], {**env, "LLMTRACE_HOME": home})
            at_base = next(p for p in points if p["calls"] >= base)
            out[name] = {
                "calls": points[-1]["calls"],
                "rss_base_mb": at_base["rss_kb"] / 1024,
                "rss_last_mb": points[-1]["rss_kb"] / 1024,
                "rss_growth_mb": (points[-1]["rss_kb"] - at_base["rss_kb"]) / 1024,
                "rss_max_mb": max(p["rss_kb"] for p in points) / 1024,
                "us_first": points[1]["us_per_call"] if len(points) > 1 else points[0]["us_per_call"],
                "us_last": points[-1]["us_per_call"],
                "spool_max_kb": max(p["spool_bytes"] for p in points) / 1024,
                "checkpoints": [(p["calls"], round(p["rss_kb"] / 1024, 1), round(p["us_per_call"])) for p in points],
            }
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=None)
    ap.add_argument("--kind", choices=("plain", "agent", "gather"), default="plain")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    for mode, r in measure(a.quick, a.calls, a.kind).items():
        print(f"{mode}: " + ", ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()
                                       if k != "checkpoints"))
        print("   checkpoints (calls, RSS MB, µs/call):", r["checkpoints"])
