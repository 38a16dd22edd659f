"""A chat call, then structured output; argv[1] is the client's max_retries ("default" leaves it unset)."""

import sys

from langchain_openai import ChatOpenAI
from pydantic import BaseModel


class Answer(BaseModel):
    value: int


budget = sys.argv[1]
llm = ChatOpenAI(model="gpt-4o-mini", **({} if budget == "default" else {"max_retries": int(budget)}))
try:
    print(llm.invoke("warm up").content[:20])
    print(llm.with_structured_output(Answer).invoke("give me a number").value)
except Exception as e:
    print(f"failed: {type(e).__name__}")
    sys.exit(2)
