"""A runaway loop: asks the model again and again (50 times at most). argv: [--uncaught] [--model M].
It catches llmtrace.BudgetExceeded, as the README shows, unless --uncaught."""

import sys

from langchain_openai import ChatOpenAI

from llmtrace import BudgetExceeded

args = sys.argv[1:]
model = args[args.index("--model") + 1] if "--model" in args else "gpt-4o-mini"
llm = ChatOpenAI(model=model, temperature=0)
n = 0


def loop() -> None:
    global n
    while n < 50:
        llm.invoke(f"step {n}")
        n += 1


if "--uncaught" in args:
    loop()
else:
    try:
        loop()
    except BudgetExceeded as e:
        print(f"stopped after {n} calls: {e}")
print(f"made {n} calls")
