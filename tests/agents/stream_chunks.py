"""Streams one answer and prints every chunk's content as it came (a replay must give the same chunks)."""

import json

from langchain_openai import ChatOpenAI

llm = ChatOpenAI(model="gpt-4o-mini")
print(json.dumps([c.content for c in llm.stream("tell me a story about a fjord")]))
