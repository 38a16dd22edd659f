"""The openai SDK on its own: a plain chat.completions.create call."""

from openai import OpenAI

client = OpenAI()
completion = client.chat.completions.create(
    model="gpt-4o-mini",
    messages=[
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Write a one-sentence bedtime story about a unicorn."},
    ],
)
print(completion.choices[0].message.content)
print("finish_reason:", completion.choices[0].finish_reason)
print("model:", completion.model)
print("usage:", completion.usage.prompt_tokens, completion.usage.completion_tokens, completion.usage.total_tokens)
