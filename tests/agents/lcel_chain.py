"""A prompt | model | parser chain: invoke, stream, batch and ainvoke."""

import asyncio

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI

chain = ChatPromptTemplate.from_template("Say something about {topic}") | ChatOpenAI(model="gpt-4o-mini") | StrOutputParser()
print("invoke:", chain.invoke({"topic": "invoke"}))
print("stream:", "".join(chain.stream({"topic": "stream"})))
print("batch:", len(chain.batch([{"topic": "batch one"}, {"topic": "batch two"}])))
print("ainvoke:", asyncio.run(chain.ainvoke({"topic": "ainvoke"})))
