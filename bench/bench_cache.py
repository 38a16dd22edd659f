"""Cache: the math agent against the scripted server with 300 ms latency, cold then warm.

Each round uses a fresh cache: a cold run fills it, a warm run replays it. Reported: wall time of
each, requests at the server during the warm run, the speed-up on LLM time (sum of the LLM spans'
durations, cold ÷ warm) and on wall time; then the cost of one cache lookup (key + read) on a
cache of 2,000 entries, p50 and p99.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ROOT, llmtrace, median, pct, run  # noqa: E402


def _llm_seconds(home: str) -> float:
    from llmtrace.store import open_store
    from llmtrace.store.queries import get_spans, resolve_trace_id

    db = open_store(Path(home) / "traces.db")
    spans = get_spans(db, resolve_trace_id(db, "last"))
    return sum(s.duration_us for s in spans if s.kind == "llm") / 1e6


def lookup_latency(n_entries: int = 2000, n_lookups: int = 5000) -> tuple[float, float]:
    from llmtrace.store.cache import CacheSettings, ResponseCache, request_key

    cache = ResponseCache(CacheSettings(directory=Path(tempfile.mkdtemp())))
    math = json.loads((ROOT / "sample_agents" / "math_agent.mock.json").read_text())
    bodies = []
    for i in range(n_entries):
        body = {"model": "gpt-4o-mini", "temperature": 0, "messages": [
            {"role": "system", "content": "You are a helpful assistant"},
            {"role": "user", "content": f"question {i}: " + "Take 3 to the fifth power and multiply that by thirty six" * 3}],
            "tools": [{"type": "function", "function": {"name": "multiply", "parameters": {"type": "object"}}}] * 2}
        bodies.append(body)
        answer = json.dumps({"choices": [{"message": {"content": str(math)}}]}).encode()
        cache.set(request_key(body, "https://api.openai.com/v1/chat/completions") + ".0", 200,
                  [["content-type", "application/json"]], [answer], False)
    times = []
    for _ in range(n_lookups):
        body = random.choice(bodies)
        t0 = time.perf_counter()
        hit = cache.get(request_key(body, "https://api.openai.com/v1/chat/completions") + ".0")
        times.append((time.perf_counter() - t0) * 1000)
        assert hit is not None
    cache.close()
    return pct(times, 50), pct(times, 99)


def measure(quick: bool = False) -> dict[str, float]:
    from llmtrace.mock import MockServer, Script

    rounds = 1 if quick else 3
    script = Script.load(ROOT / "sample_agents" / "math_agent.mock.json")
    script.latency_ms = 300
    cold, warm, llm_cold, llm_warm, warm_requests = [], [], [], [], []
    with MockServer(script) as server:
        for _ in range(rounds):
            home = tempfile.mkdtemp()
            env = {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "bench", "LLMTRACE_HOME": home}
            agent = str(ROOT / "sample_agents" / "math_agent.py")
            cold.append(run(llmtrace("run", "-q", agent), env))
            llm_cold.append(_llm_seconds(home))
            before = server.stats.requests
            warm.append(run(llmtrace("run", "-q", agent), env))
            warm_requests.append(server.stats.requests - before)
            llm_warm.append(_llm_seconds(home))
    p50, p99 = lookup_latency(500 if quick else 2000, 1000 if quick else 5000)
    return {
        "cold_s": median(cold),
        "warm_s": median(warm),
        "wall_speedup": median(cold) / median(warm),
        "warm_requests": max(warm_requests),
        "llm_cold_s": median(llm_cold),
        "llm_warm_s": median(llm_warm),
        "llm_speedup": median(llm_cold) / median(llm_warm),
        "lookup_p50_ms": p50,
        "lookup_p99_ms": p99,
    }


if __name__ == "__main__":
    for k, v in measure("--quick" in sys.argv).items():
        print(f"{k:16s} {v:10.4f}")
