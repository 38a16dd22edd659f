"""A sampling loop: the same prompt five times at temperature 1, each answer printed."""

from langchain_openai import ChatOpenAI

llm = ChatOpenAI(model="gpt-4o-mini", temperature=1)
for i in range(1, 6):
    print(f"sample {i}:", llm.invoke("Suggest a name for a pet goldfish.").content)
