"""A small tool-using agent on ChatOllama or ChatGoogleGenerativeAI (argv[1]: ollama | gemini), then a streamed
answer. The server comes from the environment (OLLAMA_HOST / GOOGLE_GEMINI_BASE_URL), as a user's script has it."""

import sys

from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool

provider = sys.argv[1]
if provider == "ollama":
    from langchain_ollama import ChatOllama

    llm = ChatOllama(model="llama3.2", temperature=0)
else:
    from langchain_google_genai import ChatGoogleGenerativeAI

    llm = ChatGoogleGenerativeAI(model="gemini-2.5-flash", temperature=0, max_retries=1)


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


messages = [HumanMessage("What is 6 times 7?")]
ai = llm.bind_tools([multiply]).invoke(messages)
messages.append(ai)
for call in ai.tool_calls:
    messages.append(ToolMessage(str(multiply.invoke(call["args"])), tool_call_id=call["id"]))
print("tools:", [c["name"] for c in ai.tool_calls])
print("answer:", llm.bind_tools([multiply]).invoke(messages).content)
print("streamed:", "|".join(str(c.content) for c in llm.stream("Say hello to the world")))
