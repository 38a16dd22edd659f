"""Three questions answered at once: asyncio.gather over an LCEL chain (streamed), then a tool on
each answer. `llmtrace show --timeline` draws the calls side by side."""

import asyncio

from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI


@tool
async def word_count(text: str) -> int:
    """Count the words of a text."""
    await asyncio.sleep(0.05)
    return len(text.split())


chain = ChatPromptTemplate.from_messages([("user", "In one sentence: what is {city} known for?")]) | ChatOpenAI(
    model="gpt-4o-mini", streaming=True
)


async def one(city: str) -> tuple[str, str, int]:
    answer = (await chain.ainvoke({"city": city})).content
    return city, answer, await word_count.ainvoke({"text": answer})


async def main() -> None:
    for city, answer, words in await asyncio.gather(*(one(c) for c in ["Oslo", "Lima", "Cairo"])):
        print(f"{city} ({words} words): {answer}")


if __name__ == "__main__":
    asyncio.run(main())
