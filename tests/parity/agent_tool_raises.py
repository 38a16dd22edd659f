"""A classic AgentExecutor whose tool raises: the exception propagates and the script dies with a traceback."""

try:
    from langchain_classic.agents import AgentExecutor, create_openai_tools_agent
except ImportError:  # LangChain 0.3: the classic agents are still in langchain itself
    from langchain.agents import AgentExecutor, create_openai_tools_agent
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI


class WeatherServiceDown(RuntimeError):
    pass


@tool
def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    raise WeatherServiceDown(f"weather service unreachable while looking up {city}")


prompt = ChatPromptTemplate.from_messages(
    [
        ("system", "You are a helpful assistant. Use tools when needed."),
        ("human", "{input}"),
        MessagesPlaceholder("agent_scratchpad"),
    ]
)
llm = ChatOpenAI(model="gpt-4o-mini", temperature=0)
agent = create_openai_tools_agent(llm, [get_weather], prompt)
executor = AgentExecutor(agent=agent, tools=[get_weather])
print("asking about the weather")
result = executor.invoke({"input": "What is the weather in Oslo?"})
print("never printed:", result["output"])
