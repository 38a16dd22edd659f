"""create_agent driven with ainvoke; the model asks for two tools at once (parallel tool calls)."""

import asyncio

from langchain.agents import create_agent
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
