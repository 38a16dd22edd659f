"""Calls the model in a loop, slowly, so a test can kill it part-way through.

argv[1]: number of steps (default 100); argv[2]: a prefix for every prompt (default none).
"""

import sys
import time

from langchain_openai import ChatOpenAI

llm = ChatOpenAI(model="gpt-4o-mini")
prefix = sys.argv[2] if len(sys.argv) > 2 else ""
for i in range(int(sys.argv[1]) if len(sys.argv) > 1 else 100):
    llm.invoke(f"{prefix} step {i}")
    print(f"step {i} done", flush=True)
    time.sleep(0.05)
