"""Worker started by subprocess_child.py: two model calls, answers printed to the shared stdout."""

import sys

from openai import OpenAI

from langchain_openai import ChatOpenAI

topic_a, topic_b = sys.argv[1:3]
print("worker: via langchain:", ChatOpenAI(model="gpt-4o-mini", temperature=0).invoke(f"worker asks about {topic_a}").content)
r = OpenAI().chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": f"worker asks about {topic_b}"}])
print("worker: via openai:", r.choices[0].message.content)
