"""A small user project: the agent code its tests exercise (OpenAI through LangChain)."""

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI


def model() -> ChatOpenAI:
    return ChatOpenAI(model="gpt-4o-mini", temperature=0)


def chain():
    prompt = ChatPromptTemplate.from_messages([("system", "You are terse."), ("user", "{question}")])
    return prompt | model() | StrOutputParser()


@tool
def multiply(first_int: int, second_int: int) -> int:
    """Multiply two integers together."""
    return first_int * second_int


@tool
def exponentiate(base: int, exponent: int) -> int:
    """Exponentiate the base to the exponent power."""
    return base**exponent


def agent():
    try:
        from langchain.agents import create_agent
    except ImportError:  # LangChain 0.3
        from langgraph.prebuilt import create_react_agent as create_agent
    return create_agent(model(), tools=[multiply, exponentiate])
