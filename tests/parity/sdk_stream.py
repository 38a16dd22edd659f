"""The openai SDK streaming a chat completion: every chunk printed with its number."""

from openai import OpenAI

client = OpenAI()
stream = client.chat.completions.create(
    model="gpt-4o-mini",
    messages=[{"role": "user", "content": "Count to five in words."}],
    stream=True,
)
n = 0
for chunk in stream:
    n += 1
    delta = chunk.choices[0].delta.content if chunk.choices else "<no choices>"
    finish = chunk.choices[0].finish_reason if chunk.choices else None
    print(f"{n}: {delta!r} finish={finish} usage={chunk.usage is not None}")
print("chunks:", n)
