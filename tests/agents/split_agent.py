"""A script that serves many requests: top-level invocations in a loop, in parallel threads, a bare
tool call, a bare SDK call, one that fails (caught), and one that forks a worker process."""

import multiprocessing
import sys
from concurrent.futures import ThreadPoolExecutor

from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from openai import OpenAI

llm = ChatOpenAI(model="gpt-4o-mini")
chain = ChatPromptTemplate.from_messages([("user", "{q}")]) | llm


@tool
def lookup(city: str) -> str:
    """Look up a city."""
    if city == "Atlantis":
        raise LookupError(f"no such city: {city}")
    return f"{city}: found"


def two_calls(q: str) -> str:
    first = llm.invoke(f"first {q}").content
    return first + " / " + llm.invoke(f"second {q}").content


def _worker(q: str) -> None:
    llm.invoke(f"in a worker process: {q}")


def forks(q: str) -> str:
    p = multiprocessing.get_context("fork").Process(target=_worker, args=(q,))
    p.start()
    p.join()
    return f"worker exit {p.exitcode}"


if __name__ == "__main__":
    for q in ["alpha", "beta", "gamma"]:
        print(chain.invoke({"q": q}).content)
    with ThreadPoolExecutor(max_workers=2) as pool:
        for answer in pool.map(RunnableLambda(two_calls).with_config(run_name="two_calls").invoke, ["left", "right"]):
            print(answer)
    print(lookup.invoke({"city": "Oslo"}))
    try:
        RunnableLambda(lambda c: lookup.invoke({"city": c})).with_config(run_name="find").invoke("Atlantis")
    except LookupError as e:
        print("caught:", e)
    print(OpenAI().chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "bare"}]).choices[0].message.content)
    print(RunnableLambda(forks).with_config(run_name="forks").invoke("delta"))
    if "--crash" in sys.argv:
        RunnableLambda(lambda c: lookup.invoke({"city": c})).with_config(run_name="find").invoke("Atlantis")
