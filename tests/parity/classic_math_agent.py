"""The classic math AgentExecutor (create_openai_tools_agent): its model calls stream by default."""

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
llm = ChatOpenAI(model="gpt-4o-mini", temperature=0)
tools = [multiply, exponentiate]
executor = AgentExecutor(
    agent=create_openai_tools_agent(llm, tools, prompt), tools=tools, return_intermediate_steps=True
)
result = executor.invoke({"input": "Take 3 to the fifth power and multiply that by thirty six, then square the result"})
for action, observation in result["intermediate_steps"]:
    print(f"{action.tool}({action.tool_input}) = {observation}")
print(result["output"])
