"""Secrets where a run meets them: the API key from the environment and one passed in code (only the
SDK client knows it is a key), a tool's `api_token=` argument, a DB_PASSWORD in a tool's result, and
a key in the message of a tool's error."""

import os

from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

KEY = os.environ["OPENAI_API_KEY"]
IN_CODE = os.environ["SECOND_PART"] + "-tail-Z9"  # not from a *KEY* variable: built here


@tool
def call_service(api_token: str, query: str) -> str:
    """Call a service with a token."""
    return f"called with {query}"


@tool
def read_config(name: str) -> str:
    """Read a config file."""
    return f"DB_HOST=db.internal\nDB_PASSWORD={os.environ['DB_PASSWORD']}\n"


@tool
def connect(dsn: str) -> str:
    """Connect somewhere."""
    raise ConnectionError(f"refused for key {IN_CODE} at {dsn}")


llm = ChatOpenAI(model="gpt-4o-mini", api_key=IN_CODE)
print(llm.invoke(f"please ignore this: {KEY} and {IN_CODE}").content[:20])
print(call_service.invoke({"api_token": os.environ["SERVICE_TOKEN"], "query": "weather"}))
print(read_config.invoke({"name": "prod.env"}))
try:
    connect.invoke({"dsn": "db://x"})
except ConnectionError:
    print("connect failed, as planned")
print(ChatOpenAI(model="gpt-4o-mini").invoke("plain call").content[:10])
