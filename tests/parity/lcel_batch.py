"""LCEL: prompt | ChatOpenAI | StrOutputParser, run over four inputs with .batch()."""

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI

prompt = ChatPromptTemplate.from_messages(
    [("system", "You are a terse assistant. Answer in one sentence."), ("human", "Tell me a fact about {topic}.")]
)
chain = prompt | ChatOpenAI(model="gpt-4o-mini", temperature=0) | StrOutputParser()

topics = ["otters", "volcanoes", "the moon", "sourdough"]
answers = chain.batch([{"topic": t} for t in topics], config={"max_concurrency": 4})
for topic, answer in zip(topics, answers):
    print(f"{topic}: {answer}")
