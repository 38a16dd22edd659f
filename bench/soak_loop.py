"""The soak benchmark's workload: a long loop that reports on itself.

    python bench/soak_loop.py KIND CALLS EVERY

KIND is `plain` (ChatOpenAI.invoke), `agent` (the math AgentExecutor, 4 LLM calls and 3 tool
calls a run; CALLS counts runs) or `gather` (asyncio.gather batches of 10 ainvoke; CALLS counts
calls). Every EVERY calls it prints a JSON line: calls so far, RSS (kB), µs per call over the last
interval, and the bytes in llmtrace's spool folder ($LLMTRACE_HOME/spool) when traced.
"""

import asyncio
import json
import os
import sys
import time
from pathlib import Path

from langchain_openai import ChatOpenAI

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "sample_agents"))


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))


def spool_bytes() -> int:
    home = os.environ.get("LLMTRACE_HOME")
    folder = Path(home) / "spool" if home else None
    return sum(p.stat().st_size for p in folder.glob("*")) if folder and folder.is_dir() else 0


kind, calls, every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
llm = ChatOpenAI(model="gpt-4o-mini", max_retries=0)
if kind == "agent":
    try:
        from langchain_classic.agents import AgentExecutor, create_openai_tools_agent
    except ImportError:  # LangChain 0.3
        from langchain.agents import AgentExecutor, create_openai_tools_agent
    from math_agent import exponentiate, multiply, prompt

    executor = AgentExecutor(agent=create_openai_tools_agent(llm, [multiply, exponentiate], prompt),
                             tools=[multiply, exponentiate])
    step = lambda i: executor.invoke(  # noqa: E731
        {"input": f"Take 3 to the fifth power and multiply that by thirty six, then square the result ({i})"})
    batch = 1
elif kind == "gather":
    loop = asyncio.new_event_loop()  # one loop for the whole run: the async client is bound to it

    async def ten(i: int) -> None:
        await asyncio.gather(*(llm.ainvoke(f"question {i + j}") for j in range(10)))

    step = lambda i: loop.run_until_complete(ten(i))  # noqa: E731
    batch = 10
else:
    step = lambda i: llm.invoke(f"question {i}")  # noqa: E731
    batch = 1

t0 = time.perf_counter()
done = 0
while done < calls:
    step(done)
    done += batch
    if done % every == 0:
        now = time.perf_counter()
        print(json.dumps({"calls": done, "rss_kb": rss_kb(), "us_per_call": (now - t0) / every * 1e6,
                          "spool_bytes": spool_bytes()}), flush=True)
        t0 = now
