"""multiprocessing: a Pool(3) under the fork start method making 6 model calls."""

import multiprocessing

from langchain_openai import ChatOpenAI


def translate(word: str) -> str:
    llm = ChatOpenAI(model="gpt-4o-mini", temperature=0)
    return f"{word} -> {llm.invoke(f'Translate to French: {word}').content}"


if __name__ == "__main__":
    words = ["cat", "dog", "house", "tree", "water", "bread"]
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(3) as pool:
        results = pool.map(translate, words)
    for line in sorted(results):
        print(line)
    print("done:", len(results))
