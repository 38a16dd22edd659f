"""Calls the model in a loop, slowly, so a test can kill it part-way through."""

import sys
import time

from langchain_openai import ChatOpenAI

llm = ChatOpenAI(model="gpt-4o-mini")
for i in range(int(sys.argv[1]) if len(sys.argv) > 1 else 100):
    llm.invoke(f"step {i}")
    print(f"step {i} done", flush=True)
    time.sleep(0.05)
