"""A chat model of another provider next to ChatOpenAI: ChatAnthropic when langchain_anthropic is
installed (pointed at ANTHROPIC_BASE_URL), else a BaseChatModel defined here that reports usage_metadata."""

from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI

try:
    from langchain_anthropic import ChatAnthropic
except ImportError:
    ChatAnthropic = None


def text_of(message):
    """message.text: a property on langchain-core 1.x, a method on late 0.3 releases, absent before."""
    text = getattr(message, "text", None)
    if text is not None:
        return text if isinstance(text, str) else text()
    if isinstance(message.content, str):
        return message.content
    return "".join(b if isinstance(b, str) else b.get("text", "") for b in message.content
                   if isinstance(b, str) or (isinstance(b, dict) and b.get("type") == "text"))


class HouseChatModel(BaseChatModel):
    """An in-house model: answers by rule, counts tokens by words."""

    model_name: str = "house-model-1"

    @property
    def _llm_type(self) -> str:
        return "house-chat"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        question = str(messages[-1].content)
        answer = f"House model says: {question.split('?')[0].split()[-1]} is a fine topic."
        usage = {"input_tokens": sum(len(str(m.content).split()) for m in messages), "output_tokens": len(answer.split())}
        usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
        message = AIMessage(content=answer, usage_metadata=usage, response_metadata={"model_name": self.model_name})
        return ChatResult(generations=[ChatGeneration(message=message)], llm_output={"model_name": self.model_name})


if ChatAnthropic is not None:
    other = ChatAnthropic(model="claude-3-5-haiku-latest", temperature=0, max_tokens=256)
    print("other provider: anthropic")
else:
    other = HouseChatModel()
    print("other provider: house model")

prompt = ChatPromptTemplate.from_messages([("system", "Answer in one sentence."), ("human", "{question}")])
for name, model in [("openai", ChatOpenAI(model="gpt-4o-mini", temperature=0)), ("other", other)]:
    for question in ["What is special about octopuses?", "Why do we trace programs?"]:
        message = (prompt | model).invoke({"question": question})
        u = message.usage_metadata or {}
        print(f"{name}: {text_of(message)} [tokens {u.get('input_tokens', 0) > 0} {u.get('output_tokens', 0) > 0}]")
    print(f"{name} chain:", (prompt | model | StrOutputParser()).invoke({"question": "What is a span?"}))
    chunks = list((prompt | model).stream({"question": "Why do we trace programs?"}))
    print(f"{name} stream: {len(chunks)} chunks, text {''.join(text_of(c) for c in chunks)!r}")
