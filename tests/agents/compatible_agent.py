"""A tool-using step on ChatMistralAI (plain httpx) or ChatGroq (the groq SDK) — argv[1]: mistral | groq — then a
streamed answer; both post Chat Completions to the server the environment names (MISTRAL_BASE_URL, GROQ_API_BASE)."""

import sys
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
if sys.argv[1] == "mistral":
    from langchain_mistralai import ChatMistralAI
    llm = ChatMistralAI(model="mistral-small-latest", temperature=0)
else:
    from langchain_groq import ChatGroq
    llm = ChatGroq(model="llama-3.1-8b-instant", temperature=0)

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
