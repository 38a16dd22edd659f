"""create_agent driven with ainvoke; the model asks for two tools at once (parallel tool calls)."""

import asyncio

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


async def main() -> None:
    agent = create_agent(ChatOpenAI(model="gpt-4o-mini"), tools=[multiply, exponentiate])
    state = await agent.ainvoke({"messages": [{"role": "user", "content": "both at once please"}]})
    print(state["messages"][-1].content)


if __name__ == "__main__":
    asyncio.run(main())
