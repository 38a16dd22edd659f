"""The openai SDK Responses API: client.responses.create, plain and with stream=True."""

from openai import OpenAI

client = OpenAI()
response = client.responses.create(
    model="gpt-4o-mini",
    instructions="You are a concise assistant.",
    input="Write a haiku about tracing programs.",
)
print("output_text:", response.output_text)
print("status:", response.status)
print("usage:", response.usage.input_tokens > 0, response.usage.output_tokens > 0)

stream = client.responses.create(
    model="gpt-4o-mini",
    input=[{"role": "user", "content": "Say hello to the stream."}],
    stream=True,
)
n = 0
deltas = []
for event in stream:
    n += 1
    if event.type == "response.output_text.delta":
        deltas.append(event.delta)
        print(f"{n}: {event.type} {event.delta!r}")
    else:
        print(f"{n}: {event.type}")
print("events:", n, "text:", repr("".join(deltas)))
