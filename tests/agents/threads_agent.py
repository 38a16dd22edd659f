"""LLM calls from threading.Thread and ThreadPoolExecutor workers started inside a traced step."""

import threading
from concurrent.futures import ThreadPoolExecutor

from langchain_core.runnables import RunnableLambda
from langchain_openai import ChatOpenAI

llm = ChatOpenAI(model="gpt-4o-mini")


def fan_out(question: str) -> list[str]:
    answers: list[str] = []
    t = threading.Thread(target=lambda: answers.append(llm.invoke(f"thread: {question}").content))
    t.start()
    t.join()
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers += [m.content for m in pool.map(lambda i: llm.invoke(f"pool {i}: {question}"), range(2))]
    return answers


if __name__ == "__main__":
    out = RunnableLambda(fan_out).with_config(run_name="fan_out").invoke("hello")
    # A worker that outlives the main script: python waits for it, so must we.
    late = threading.Thread(target=lambda: llm.invoke("late worker"))
    late.start()
    print(len(out))
