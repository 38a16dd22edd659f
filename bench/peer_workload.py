"""The workloads of bench_peers.py: the same script for every tracer, timed from inside.

    python bench/peer_workload.py loop N      # 1 warm-up call, then N ChatOpenAI.invoke, distinct prompts
    python bench/peer_workload.py agent RUNS  # the seed math AgentExecutor (4 LLM + 3 tool calls a run), RUNS times
    python bench/peer_workload.py one         # a single call: the start-up script

`loop` and `agent` print one JSON line, {"workload", "calls", "loop_s", "loop_cpu_s"}: the wall
time and the process's CPU time (all its threads) of the loop alone (the warm-up call, interpreter start, imports and the tracer's set-up are outside it), so
traced − untraced divided by the calls is what a tracer adds to each call. The prompts depend
only on the call's number, so a second run against the same response cache is all hits.
"""

import json
import sys
import time
from pathlib import Path

from langchain_openai import ChatOpenAI

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
    print(json.dumps({"workload": "loop", "calls": count, "loop_s": elapsed, "loop_cpu_s": cpu}), flush=True)
