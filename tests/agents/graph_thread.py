"""A LangGraph graph with a checkpointer and a human in the loop: each turn asks the model, then
`interrupt()`s for approval; the caller resumes with `Command(resume=...)`. Two turns on thread
`t-1` (user alice), one on `t-2` (user bob).

    python graph_thread.py
"""

import operator
from typing import Annotated, TypedDict

from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

model = ChatOpenAI(model="gpt-4o-mini", max_retries=0)


class State(TypedDict):
    messages: Annotated[list, operator.add]
    approved: str


def draft(state: State) -> dict:
    return {"messages": [model.invoke(state["messages"])]}


def approve(state: State) -> dict:
    return {"approved": interrupt({"question": "send this answer?"})}


graph = StateGraph(State)
graph.add_node("draft", draft)
graph.add_node("approve", approve)
graph.add_edge(START, "draft")
graph.add_edge("draft", "approve")
graph.add_edge("approve", END)
app = graph.compile(checkpointer=InMemorySaver())


def turn(thread: str, user: str, text: str) -> None:
    config = {"configurable": {"thread_id": thread}, "metadata": {"user_id": user}}
    paused = app.invoke({"messages": [HumanMessage(text)]}, config)
    print(thread, "paused:", paused["__interrupt__"][0].value["question"])
    done = app.invoke(Command(resume="yes"), config)
    print(thread, "approved:", done["approved"], "messages:", len(done["messages"]))


turn("t-1", "alice", "What is the capital of France?")
turn("t-2", "bob", "What is 2 + 2?")
turn("t-1", "alice", "And of Spain?")
