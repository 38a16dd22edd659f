"""Helpers shared by the benchmarks: timing, medians, running the CLI."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def run(cmd: list[str], env: dict[str, str] | None = None, check: bool = True) -> float:
    """Wall seconds of one command (stdout/stderr discarded)."""
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env={**os.environ, **(env or {})}, cwd=str(ROOT), stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - t0
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {p.stderr[-2000:]}")
    return elapsed


def llmtrace(*args: str) -> list[str]:
    exe = Path(PY).parent / "llmtrace"
    return [str(exe), *args] if exe.exists() else [PY, "-m", "llmtrace", *args]


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]
