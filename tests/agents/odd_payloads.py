"""Tools that return what a tracer finds hard to store; a model reply of about 10 MB."""

from langchain_core.tools import tool
from langchain_openai import ChatOpenAI


class Opaque:
    def __repr__(self) -> str:
        return "<Opaque thing>"


@tool
def odd(kind: str) -> object:
    """Return an awkward value."""
    if kind == "bytes":
        return b"\xff\xfe\x00raw"
    if kind == "object":
        return Opaque()
    if kind == "surrogate":
        return "bad \udcff char"
    return {"level": kind}


nested: dict = {}
node = nested
for _ in range(200):
    node["child"] = {}
    node = node["child"]

for kind in ("bytes", "object", "surrogate"):
    print(kind, repr(odd.invoke({"kind": kind}))[:30])
print("nested", len(str(odd.invoke({"kind": str(nested)[:50]}))))
reply = ChatOpenAI(model="gpt-4o-mini").invoke("big please").content
print("reply", len(reply))
