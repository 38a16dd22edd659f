"""Steps that fail with secrets in their error messages: a tool, a chain step, and finally the script
itself. The secrets are the API key and the value of SERVICE_TOKEN (known as secret only by its name)."""

import os

from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

KEY = os.environ["OPENAI_API_KEY"]
TOKEN = os.environ["SERVICE_TOKEN"]


@tool
def lookup(query: str) -> str:
    """Look something up in a service that needs a key."""
    raise RuntimeError(f"the service refused key {KEY} (token {TOKEN}) for {query}")


def check(text: str) -> str:
    raise ValueError(f"rejected {text!r}: signed with {TOKEN}")


try:
    lookup.invoke({"query": "weather"})
except RuntimeError:
    print("the tool failed")
chain = ChatOpenAI(model="gpt-4o-mini") | RunnableLambda(lambda m: m.content) | RunnableLambda(check)
try:
    chain.invoke("hello")
except ValueError:
    print("the chain failed")
raise SystemExit(f"giving up: key {KEY}")
