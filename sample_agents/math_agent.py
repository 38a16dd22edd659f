"""The reference math agent, written as LangChain's docs write an OpenAI-tools agent (classic API).

Run it traced and offline:   llmtrace run --mock sample_agents/math_agent.py
Against OpenAI:              OPENAI_API_KEY=sk-… llmtrace run sample_agents/math_agent.py
"""

import sys

try:
    from langchain_classic.agents import AgentExecutor, create_openai_tools_agent
except ImportError:  # LangChain 0.3: the classic agents are still in langchain itself
    from langchain.agents import AgentExecutor, create_openai_tools_agent
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
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


prompt = ChatPromptTemplate.from_messages(
    [
        ("system", "You are a helpful assistant"),
        MessagesPlaceholder("chat_history", optional=True),
        ("human", "{input}"),
        MessagesPlaceholder("agent_scratchpad"),
    ]
)

if __name__ == "__main__":
    question = " ".join(sys.argv[1:]) or (
        "Take 3 to the fifth power and multiply that by thirty six, then square the result"
    )
    llm = ChatOpenAI(model="gpt-4o-mini", temperature=0)
    tools = [multiply, exponentiate]
    agent = create_openai_tools_agent(llm, tools, prompt)
    executor = AgentExecutor(agent=agent, tools=tools)
    result = executor.invoke({"input": question})
    print(result["output"])
