"""A 200-step agent-like loop: each step one chat call and one tool call, through LangChain.

Used by bench_overhead.py to compare `python bench/agent_loop.py` with `llmtrace run …` on it.
"""

import sys

from langchain_core.tools import tool
from langchain_openai import ChatOpenAI


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


steps = int(sys.argv[1]) if len(sys.argv) > 1 else 200
llm = ChatOpenAI(model="gpt-4o-mini", max_retries=0)
total = 0
for i in range(steps):
    reply = llm.invoke(f"step {i}: add {i} and {total}")
    total = add.invoke({"a": i, "b": total})
print(total, len(reply.content))
