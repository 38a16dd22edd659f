"""Several chat calls through LangChain in one run, in order. Each argument is one call:
PROMPT, optionally followed by @temp=T (temperature, default 0), @stream (stream the reply) and
@other (send it to $OTHER_BASE_URL instead of $OPENAI_BASE_URL). Prints one reply per line."""

import os
import sys

from langchain_openai import ChatOpenAI

for arg in sys.argv[1:]:
    prompt, *options = arg.split("@")
    temp = next((float(o.split("=", 1)[1]) for o in options if o.startswith("temp=")), 0.0)
    extra = {"base_url": os.environ["OTHER_BASE_URL"]} if "other" in options else {}
    llm = ChatOpenAI(model="gpt-4o-mini", temperature=temp, **extra)
    if "stream" in options:
        print("".join(str(c.content) for c in llm.stream(prompt)))
    else:
        print(llm.invoke(prompt).content)
