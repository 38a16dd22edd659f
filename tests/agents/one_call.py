"""One chat call through LangChain: argv[1] is the prompt; --stream streams it; --temp sets temperature."""

import os
import sys

from langchain_openai import ChatOpenAI

args = sys.argv[1:]
stream = "--stream" in args
temp = float(args[args.index("--temp") + 1]) if "--temp" in args else 0.0
prompt = args[0]
llm = ChatOpenAI(model="gpt-4o-mini", temperature=temp, timeout=float(os.environ.get("CALL_TIMEOUT", "30")))
if stream:
    print("".join(str(c.content) for c in llm.stream(prompt)))
else:
    print(llm.invoke(prompt).content)
