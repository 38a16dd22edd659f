"""ChatOpenAI(use_responses_api=True): invoke, stream, and bind_tools with one tool-call round."""

from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI


def text_of(message):
    """message.text: a property on langchain-core 1.x, a method on late 0.3 releases, absent before."""
    text = getattr(message, "text", None)
    if text is not None:
        return text if isinstance(text, str) else text()
    if isinstance(message.content, str):
        return message.content
    return "".join(b if isinstance(b, str) else b.get("text", "") for b in message.content
                   if isinstance(b, str) or (isinstance(b, dict) and b.get("type") == "text"))


@tool
def get_word_length(word: str) -> int:
    """Return the number of letters in a word."""
    return len(word)


llm = ChatOpenAI(model="gpt-4o-mini", use_responses_api=True, temperature=0)

reply = llm.invoke("Tell me a one-line joke about penguins.")
print("invoke:", text_of(reply))
print("invoke usage:", reply.usage_metadata["input_tokens"] > 0, reply.usage_metadata["output_tokens"] > 0)

n = 0
text = []
for chunk in llm.stream("Name three colours of the rainbow."):
    n += 1
    if text_of(chunk):
        text.append(text_of(chunk))
        print(f"stream chunk {n}: {text_of(chunk)!r}")
print("stream chunks:", n, "text:", repr("".join(text)))

with_tools = llm.bind_tools([get_word_length])
messages = [HumanMessage("How many letters are in the word 'observability'?")]
ai = with_tools.invoke(messages)
print("tool calls:", [(c["name"], c["args"]) for c in ai.tool_calls])
messages.append(ai)
for call in ai.tool_calls:
    result = get_word_length.invoke(call)
    print("tool result:", result.content)
    messages.append(result)
final = with_tools.invoke(messages)
print("final:", text_of(final))
