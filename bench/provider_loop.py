"""A 200-step loop on ChatOllama or ChatGoogleGenerativeAI (argv: STEPS PROVIDER): each step one chat call
and one tool call, against the scripted server's /api/chat or generateContent route (OLLAMA_HOST /
GOOGLE_GEMINI_BASE_URL). Compare `python bench/provider_loop.py 200 ollama` with
`llmtrace run --no-cache bench/provider_loop.py 200 ollama` (farm-bench --vs) for what wire capture adds.
"""

import sys

from langchain_core.tools import tool


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


steps = int(sys.argv[1]) if len(sys.argv) > 1 else 200
provider = sys.argv[2] if len(sys.argv) > 2 else "ollama"
if provider == "ollama":
    from langchain_ollama import ChatOllama

    llm = ChatOllama(model="llama3.2")
else:
    from langchain_google_genai import ChatGoogleGenerativeAI

    llm = ChatGoogleGenerativeAI(model="gemini-2.5-flash", max_retries=1)
total = 0
for i in range(steps):
    reply = llm.invoke(f"step {i}: add {i} and {total}")
    total = add.invoke({"a": i, "b": total})
print(total, len(str(reply.content)))
