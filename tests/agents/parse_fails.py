"""Structured output whose answer does not fit the schema: the SDK's parsing fails after a good HTTP exchange."""

import asyncio
import sys

from langchain_openai import ChatOpenAI, OpenAIEmbeddings
from pydantic import BaseModel


class Person(BaseModel):
    name: str
    age: int


try:
    ChatOpenAI(model="gpt-4o-mini").with_structured_output(Person).invoke("who?")
except Exception as e:
    print(f"parse failed: {type(e).__name__}")
vectors = asyncio.run(OpenAIEmbeddings(model="text-embedding-3-small", check_embedding_ctx_length=False)
                      .aembed_documents(["one text", "another text"]))
print(len(vectors), len(vectors[0]))
sys.exit(0)
