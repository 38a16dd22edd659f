"""A LangGraph StateGraph: a chat model node bound to tools, a ToolNode, and tools_condition."""

from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition


@tool
def multiply(first_int: int, second_int: int) -> int:
    """Multiply two integers together."""
    return first_int * second_int


@tool
def exponentiate(base: int, exponent: int) -> int:
    """Exponentiate the base to the exponent power."""
    return base**exponent


tools = [multiply, exponentiate]
llm = ChatOpenAI(model="gpt-4o-mini", temperature=0).bind_tools(tools)


def assistant(state: MessagesState):
    return {"messages": [llm.invoke([SystemMessage("You are a helpful assistant")] + state["messages"])]}


builder = StateGraph(MessagesState)
builder.add_node("assistant", assistant)
builder.add_node("tools", ToolNode(tools))
builder.add_edge(START, "assistant")
builder.add_conditional_edges("assistant", tools_condition)
builder.add_edge("tools", "assistant")
graph = builder.compile()

question = "Take 3 to the fifth power and multiply that by thirty six, then square the result"
for update in graph.stream({"messages": [HumanMessage(question)]}, stream_mode="updates"):
    for node, value in update.items():
        for m in value["messages"]:
            calls = [(c["name"], c["args"]) for c in getattr(m, "tool_calls", [])]
            print(f"{node}: {type(m).__name__} {m.content!r} {calls}")
