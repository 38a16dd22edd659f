"""langchain.agents.create_agent with the math tools (the LangChain 1.x agent API)."""

try:
    from langchain.agents import create_agent
except ImportError:  # LangChain 0.3: the same agent graph is LangGraph's create_react_agent
    from langgraph.prebuilt import create_react_agent

    def create_agent(model, tools, system_prompt=None):
        return create_react_agent(model, tools, prompt=system_prompt)
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI


@tool
def multiply(first_int: int, second_int: int) -> int:
    """Multiply two integers together."""
    return first_int * second_int


@tool
def exponentiate(base: int, exponent: int) -> int:
    """Exponentiate the base to the exponent power."""
    return base**exponent


agent = create_agent(
    ChatOpenAI(model="gpt-4o-mini", temperature=0),
    tools=[multiply, exponentiate],
    system_prompt="You are a helpful assistant",
)
state = agent.invoke(
    {"messages": [{"role": "user", "content": "Take 3 to the fifth power and multiply that by thirty six, then square the result"}]}
)
for m in state["messages"]:
    print(type(m).__name__, repr(m.content), [(c["name"], c["args"]) for c in getattr(m, "tool_calls", [])])
print("answer:", state["messages"][-1].content)
