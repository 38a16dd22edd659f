"""Async streaming: astream of a chain chunk by chunk, then astream_events(version="v2")."""

import asyncio
from collections import Counter

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI

prompt = ChatPromptTemplate.from_template("Write a two line poem about {topic}.")
llm = ChatOpenAI(model="gpt-4o-mini", temperature=0)


async def main() -> None:
    print("== astream (prompt | llm)")
    n = 0
    async for chunk in (prompt | llm).astream({"topic": "rivers"}):
        n += 1
        print(f"chunk {n}: {chunk.content!r}")
    print("chunks:", n)

    print("== astream (prompt | llm | StrOutputParser)")
    pieces = [p async for p in (prompt | llm | StrOutputParser()).astream({"topic": "mountains"})]
    print("pieces:", len(pieces), repr("".join(pieces)))

    print("== astream_events v2")
    seen = Counter()
    text = []
    chain = (prompt | llm | StrOutputParser()).with_config(run_name="poem_chain")
    async for ev in chain.astream_events({"topic": "the sea"}, version="v2"):
        seen[(ev["event"], ev["name"])] += 1
        if ev["event"] == "on_chat_model_stream":
            text.append(ev["data"]["chunk"].content)
        if ev["event"] == "on_chat_model_end":
            print("model output:", repr(ev["data"]["output"].content))
    for (event, name), count in sorted(seen.items()):
        print(f"{event} {name}: {count}")
    print("streamed text:", repr("".join(text)))


asyncio.run(main())
