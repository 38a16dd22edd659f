"""Concurrency: asyncio.gather over 25 ainvoke calls of one chain."""

import asyncio

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI

chain = (
    ChatPromptTemplate.from_template("What is {n} squared? Answer with the number only.")
    | ChatOpenAI(model="gpt-4o-mini", temperature=0)
    | StrOutputParser()
)


async def main() -> None:
    answers = await asyncio.gather(*(chain.ainvoke({"n": n}) for n in range(1, 26)))
    for n, answer in zip(range(1, 26), answers):
        print(n, answer)
    print("calls:", len(answers))


asyncio.run(main())
