"""A plain LCEL chain (prompt | model | parser), streamed token by token to stdout.

Run it traced and offline:   llmtrace run --mock sample_agents/streamed_chain.py "tracing"
"""

import sys

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI

prompt = ChatPromptTemplate.from_messages(
    [("system", "You write one short haiku."), ("human", "Write a haiku about {topic}.")]
)

if __name__ == "__main__":
    topic = " ".join(sys.argv[1:]) or "local tracing"
    chain = prompt | ChatOpenAI(model="gpt-4o-mini", temperature=0.7) | StrOutputParser()
    for piece in chain.stream({"topic": topic}):
        print(piece, end="", flush=True)
    print()
