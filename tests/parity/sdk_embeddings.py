"""The openai SDK embeddings endpoint: one text, then a batch."""

from openai import OpenAI

client = OpenAI()
one = client.embeddings.create(model="text-embedding-3-small", input="The food was delicious and the waiter was friendly.")
vec = one.data[0].embedding
print("dim:", len(vec))
print("first3:", [round(x, 4) for x in vec[:3]])
print("nonzero:", [(i, round(x, 4)) for i, x in enumerate(vec) if x][:3])
print("usage:", one.usage.prompt_tokens, one.usage.total_tokens)

batch = client.embeddings.create(model="text-embedding-3-small", input=["apple pie", "apple tart", "tax law"])
for item in batch.data:
    print(item.index, len(item.embedding), [round(x, 4) for x in item.embedding[:3]], "nonzero:", sum(1 for x in item.embedding if x))
