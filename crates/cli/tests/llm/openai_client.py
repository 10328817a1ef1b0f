"""Drives `zkaudit llm-gateway` with the official openai Python client,
exactly as an application would: only the base URL and the API key (a
zkaudit token) point at the gateway. Prints one JSON object of what it saw.

Usage: openai_client.py BASE_URL TOKEN
"""
import json
import sys

import openai

base_url, token = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base_url, api_key=token, max_retries=0)
seen = {}

r = client.chat.completions.create(
    model="gpt-4o-mini",
    messages=[{"role": "user", "content": "hello from python"}],
    temperature=0.2,
    max_tokens=50,
    seed=7,
)
seen["chat"] = {
    "content": r.choices[0].message.content,
    "model": r.model,
    "id": r.id,
    "usage": [r.usage.prompt_tokens, r.usage.completion_tokens],
    "finish": r.choices[0].finish_reason,
}

parts = []
stream = client.chat.completions.create(
    model="gpt-4o-mini",
    messages=[{"role": "user", "content": "stream this please"}],
    stream=True,
)
for chunk in stream:
    for c in chunk.choices:
        if c.delta and c.delta.content:
            parts.append(c.delta.content)
seen["stream"] = "".join(parts)

c = client.completions.create(model="gpt-4o-mini", prompt="complete me")
seen["completion"] = c.choices[0].text

e = client.embeddings.create(model="text-embedding-3-small", input=["one", "two"])
seen["embeddings"] = [len(d.embedding) for d in e.data]

seen["models"] = sorted(m.id for m in client.models.list())

try:
    client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "hi"}])
    seen["disallowed"] = "served"
except openai.PermissionDeniedError as err:
    seen["disallowed"] = [err.status_code, err.code]

try:
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "my card 4111 1111 1111 1111"}])
    seen["blocked"] = "served"
except openai.BadRequestError as err:
    seen["blocked"] = [err.status_code, err.code]

try:
    parts = []
    for chunk in client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "say [[card]]"}], stream=True
    ):
        for ch in chunk.choices:
            if ch.delta and ch.delta.content:
                parts.append(ch.delta.content)
    seen["stream_blocked"] = "completed"
except openai.APIError as err:
    seen["stream_blocked"] = ["error", "".join(parts)]

try:
    openai.OpenAI(base_url=base_url, api_key="zkaudit_not_a_token", max_retries=0).models.list()
    seen["bad_token"] = "served"
except openai.AuthenticationError as err:
    seen["bad_token"] = err.status_code

print(json.dumps(seen))
