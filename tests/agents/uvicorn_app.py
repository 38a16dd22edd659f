"""A small FastAPI app that answers each request with a LangChain chain, served by real uvicorn.

    python uvicorn_app.py PORT [WORKERS]     # uvicorn.run(..., workers=WORKERS) from the script
    uvicorn uvicorn_app:app --reload         # the usual dev mode (the app runs in a reloader's child)

/ask/N and /aask/N (sync and async endpoints) ask question N with `user` as LangChain metadata and
the endpoint's kind as a tag; /pid says which process answers.
"""

import os
import sys

from fastapi import FastAPI
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI

app = FastAPI()
chain = (ChatPromptTemplate.from_messages([("user", "Answer briefly: question {n}")])
         | ChatOpenAI(model="gpt-4o-mini", max_retries=0)).with_config(run_name="answer")


def _config(user: str, kind: str) -> dict:
    return {"metadata": {"user_id": user}, "tags": [kind]}


@app.get("/ask/{n}")
def ask(n: int, user: str = "anon") -> dict:
    out = chain.invoke({"n": n}, config=_config(user, "sync"))
    return {"n": n, "answer": out.content, "pid": os.getpid()}


@app.get("/aask/{n}")
async def aask(n: int, user: str = "anon") -> dict:
    out = await chain.ainvoke({"n": n}, config=_config(user, "async"))
    return {"n": n, "answer": out.content, "pid": os.getpid()}


@app.get("/pid")
def pid() -> dict:
    return {"pid": os.getpid()}


if __name__ == "__main__":
    import uvicorn

    port, workers = int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 1
    uvicorn.run("uvicorn_app:app", host="127.0.0.1", port=port, workers=workers, log_level="warning")
