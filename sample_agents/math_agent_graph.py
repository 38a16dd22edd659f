"""The reference math agent with the current LangChain agent API (`create_agent`, a LangGraph graph).

Run it traced and offline:   llmtrace run --mock sample_agents/math_agent_graph.py
"""

import sys

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


if __name__ == "__main__":
    question = " ".join(sys.argv[1:]) or (
        "Take 3 to the fifth power and multiply that by thirty six, then square the result"
    )
    agent = create_agent(
        ChatOpenAI(model="gpt-4o-mini", temperature=0),
        tools=[multiply, exponentiate],
        system_prompt="You are a helpful assistant",
    )
    state = agent.invoke({"messages": [{"role": "user", "content": question}]})
    print(state["messages"][-1].content)
