"""RunnableParallel of two branches: a model with a fallback, and a JSON chain with .with_retry()."""

from langchain_core.output_parsers import JsonOutputParser, StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableParallel
from langchain_openai import ChatOpenAI

# Nothing listens on port 9: the primary fails at once and the fallback answers.
primary = ChatOpenAI(model="gpt-4o-mini", max_retries=0, base_url="http://127.0.0.1:9/v1")
backup = ChatOpenAI(model="gpt-4o-mini", temperature=0)
summary = (
    ChatPromptTemplate.from_template("Summarize in five words: {text}")
    | primary.with_fallbacks([backup])
    | StrOutputParser()
)

# The model sometimes answers with prose instead of JSON: retry the whole branch.
extract = (
    ChatPromptTemplate.from_template("Return a JSON object with keys name and born for: {text}")
    | ChatOpenAI(model="gpt-4o-mini", temperature=1)
    | JsonOutputParser()
).with_retry(stop_after_attempt=3, wait_exponential_jitter=False)

both = RunnableParallel(summary=summary, facts=extract)
result = both.invoke({"text": "Ada Lovelace, born 1815, wrote the first computer program."})
print("summary:", result["summary"])
print("facts:", sorted(result["facts"].items()))
