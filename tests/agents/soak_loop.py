"""A long chat loop that measures its own memory: argv = calls, warm-up calls.

Prints one JSON line: Python heap growth (tracemalloc) and RSS growth (/proc) between the end of the
warm-up and the last call. Every prompt differs, so every call is a cache miss that gets recorded.
"""

import gc
import json
import sys
import tracemalloc

from langchain_openai import ChatOpenAI


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))


calls, warm = int(sys.argv[1]), int(sys.argv[2])
llm = ChatOpenAI(model="gpt-4o-mini", max_retries=0)
for i in range(warm):
    llm.invoke(f"warm-up question {i}")
gc.collect()  # what is still held, not what the cycle collector has yet to free
tracemalloc.start()
heap0, rss0 = tracemalloc.get_traced_memory()[0], rss_kb()
for i in range(calls):
    llm.invoke(f"question {i}")
gc.collect()
heap1, rss1 = tracemalloc.get_traced_memory()[0], rss_kb()
print(json.dumps({"heap_growth_bytes": heap1 - heap0, "rss_growth_kb": rss1 - rss0}))
