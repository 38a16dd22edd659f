"""The workloads of bench_peers.py: the same script for every tracer, timed from inside.

    python bench/peer_workload.py loop N      # 1 warm-up call, then N ChatOpenAI.invoke, distinct prompts
    python bench/peer_workload.py agent RUNS  # the seed math AgentExecutor (4 LLM + 3 tool calls a run), RUNS times
    python bench/peer_workload.py one         # a single call: the start-up script

`loop` and `agent` print one JSON line, {"workload", "calls", "loop_s", "loop_cpu_s"}: the wall
time and the process's CPU time (all its threads) of the loop alone (the warm-up call, interpreter start, imports and the tracer's set-up are outside it), so
traced − untraced divided by the calls is what a tracer adds to each call. The prompts depend
only on the call's number, so a second run against the same response cache is all hits. `loop` also
gives "request_us": the median time of the SDK's request() per call (the exchange with the server, or
the answer a cache hands back).
"""

import json
import sys
import time
from pathlib import Path

from langchain_openai import ChatOpenAI
import openai._base_client as _base

# The time from the SDK's request() to the answer handed back (a live exchange, or a tracer's cached
# answer), per call: the cache-hit figure of bench_peers. Wrapped after any tracer's own patch.
_request, _request_us = _base.SyncAPIClient.request, []


def _timed_request(self, *args, **kwargs):
    t = time.perf_counter()
    try:
        return _request(self, *args, **kwargs)
    finally:
        _request_us.append((time.perf_counter() - t) * 1e6)


_base.SyncAPIClient.request = _timed_request

kind = sys.argv[1]
count = int(sys.argv[2]) if len(sys.argv) > 2 else 1
llm = ChatOpenAI(model="gpt-4o-mini", max_retries=0)

if kind == "one":
    print(len(llm.invoke("hello").content))
    sys.exit(0)

if kind == "agent":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "sample_agents"))
    from langchain_classic.agents import AgentExecutor, create_openai_tools_agent
    from math_agent import exponentiate, multiply, prompt

    tools = [multiply, exponentiate]
    executor = AgentExecutor(agent=create_openai_tools_agent(llm, tools, prompt), tools=tools)
    question = {"input": "Take 3 to the fifth power and multiply that by thirty six, then square the result"}
    executor.invoke(question)  # warm-up run
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(count):
        out = executor.invoke(question)["output"]
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert "76527504" in out, out
    print(json.dumps({"workload": "agent", "runs": count, "calls": 4 * count, "loop_s": elapsed, "loop_cpu_s": cpu}),
          flush=True)
else:
    llm.invoke("warm-up")
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(count):
        llm.invoke(f"question {i}")
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    timed = sorted(_request_us[1:])  # the warm-up call left out
    print(json.dumps({"workload": "loop", "calls": count, "loop_s": elapsed, "loop_cpu_s": cpu,
                      "request_us": timed[len(timed) // 2] if timed else None}), flush=True)
