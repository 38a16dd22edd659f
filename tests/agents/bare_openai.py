"""The openai SDK used directly, next to a LangChain chain, in one script."""

import asyncio

from langchain_openai import ChatOpenAI
from openai import AsyncOpenAI, OpenAI

client = OpenAI()
r = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "bare sync"}])
print("sync:", r.choices[0].message.content)

# A caller that did not ask for usage must not see a usage-only chunk (choices would be empty).
pieces = []
for chunk in client.chat.completions.create(
    model="gpt-4o-mini", messages=[{"role": "user", "content": "bare stream"}], stream=True
):
    pieces.append(chunk.choices[0].delta.content or "")
print("stream:", "".join(pieces))


async def main() -> None:
    a = await AsyncOpenAI().chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "bare async"}])
    print("async:", a.choices[0].message.content)


asyncio.run(main())
print("langchain:", ChatOpenAI(model="gpt-4o-mini").invoke("via langchain").content)
