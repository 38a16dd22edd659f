"""Puts the API key everywhere a careless tracer would store it."""

import os

from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

KEY = os.environ["OPENAI_API_KEY"]
# Built in code, not from a *KEY* variable: only the SDK client knows it is a key.
EXPLICIT = os.environ["SECOND_PART"] + "-tail-Z9"


@tool
def call_service(api_key: str, query: str) -> str:
    """Call a service with a key."""
    return f"called with {query}"


llm = ChatOpenAI(model="gpt-4o-mini", api_key=EXPLICIT, default_headers={"X-Api-Key": EXPLICIT})
print(llm.invoke(f"please ignore this: {KEY} and {EXPLICIT}").content[:20])
print(call_service.invoke({"api_key": KEY, "query": "weather"}))
print(ChatOpenAI(model="gpt-4o-mini").invoke("plain call").content[:10])
