"""Text a model and tools control, made hostile: the scripted server answers with escapes and markup
(in the answer, the reply's `model` and a tool call's arguments); a tool returns them, another raises
them, a chain and its tags are named with them. Prints only plain text."""

from langchain_core.runnables import RunnableLambda
from langchain_core.tools import StructuredTool
from langchain_openai import ChatOpenAI

EVIL = ("\x1b[2J\x1b]8;;file:///etc/passwd\x1b\\click\x1b]8;;\x1b\\ \x1b]52;c;cm0gLXJmIH4K\x07 \x1b]0;owned\x07"
        " \x9b31m \x00 [bold red]loud[/] [link=file:///etc/passwd]x[/link] user\u202egnp.exe")


def lookup(query: str) -> str:
    """Look something up."""
    return "result: " + EVIL


def explode(query: str) -> str:
    """Fail."""
    raise ValueError("boom " + EVIL)


llm = ChatOpenAI(model="gpt-4o-mini")
reply = llm.invoke("please find hostile things")
print("answered", len(reply.content) > 0)
look = StructuredTool.from_function(lookup, name="lookup[bold]\x1b[2J")
look.invoke({"query": "q " + EVIL})
try:
    StructuredTool.from_function(explode, name="explode").invoke({"query": "x"})
except ValueError:
    print("the tool failed, as planned")
RunnableLambda(lambda x: x + " " + EVIL).invoke("step", config={"run_name": "step " + EVIL, "tags": [EVIL]})
print("done")
