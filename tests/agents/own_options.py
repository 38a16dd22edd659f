"""Hands the SDK request options of its own, twice (once with a retry budget of its own), and prints
what they hold afterwards: a traced run must leave them as an untraced one does."""

import openai
from openai._models import FinalRequestOptions
from openai.types.chat import ChatCompletion

client = openai.OpenAI()
body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
for extra in ({}, {"max_retries": 3}):
    options = FinalRequestOptions.construct(method="post", url="/chat/completions", json_data=body, **extra)
    for _ in range(2):
        reply = client.request(ChatCompletion, options)
        print(bool(reply.choices[0].message.content), options.max_retries, sorted(options.model_fields_set), sep="|")
