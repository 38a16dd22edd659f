"""Response cache for chat completions (diskcache): exact by request, optionally semantic by prompt.

The key is a hash of the request body as sent (model, messages, tools, sampling parameters …) and
the endpoint's base URL; the fields that don't change the answer (stream, stream_options, user,
metadata) are left out, so a streamed and a plain call share entries. Replayed conversations hit
turn after turn because the body holds only what the provider sees: no LangChain message ids or
usage fields. Neither key nor value holds the API key. Values are the completion JSON.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_IGNORED = {"stream", "stream_options", "user", "metadata", "store", "extra_headers", "timeout"}
VERSION = 1


@dataclass
class CacheSettings:
    enabled: bool = True
    directory: Path | None = None
    ttl_s: float | None = None
    size_limit_bytes: int = 1 << 30
    threshold: float = 0.95
    embedding_model: str = "text-embedding-3-small"
    semantic_max_messages: int = 6


def request_key(body: dict[str, Any], base_url: str) -> str:
    material = {k: v for k, v in body.items() if k not in _IGNORED}
    blob = json.dumps({"v": VERSION, "url": base_url.rstrip("/"), "body": material}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def params_key(body: dict[str, Any], base_url: str) -> str:
    """Everything but the messages: a semantic hit needs the same model, parameters and tools."""
    return request_key({k: v for k, v in body.items() if k != "messages"}, base_url)


def prompt_text(messages: list[dict[str, Any]]) -> str:
    parts = []
    for m in messages:
        content = m.get("content")
        if isinstance(content, list):
            content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        parts.append(f"{m.get('role')}: {content or ''}")
    return "\n".join(parts)


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


class ResponseCache:
    def __init__(self, settings: CacheSettings):
        import diskcache

        self.settings = settings
        assert settings.directory is not None
        settings.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        db_file = settings.directory / "cache.db"
        if not db_file.exists():  # owner-only from the start; SQLite gives its WAL the same mode
            os.close(os.open(db_file, os.O_CREAT | os.O_WRONLY, 0o600))
        self.store = diskcache.Cache(
            str(settings.directory), size_limit=settings.size_limit_bytes, eviction_policy="least-recently-stored",
            timeout=30, disk_min_file_size=1 << 30,  # values live inside cache.db, not in loose files
        )

    def get(self, key: str) -> dict[str, Any] | None:
        entry = self.store.get(("r", key))
        if not isinstance(entry, dict) or "completion" not in entry:
            return None
        return entry["completion"]

    def set(self, key: str, completion: dict[str, Any]) -> None:
        self.store.set(("r", key), {"completion": completion, "stored_s": time.time()}, expire=self.settings.ttl_s)

    # -- semantic ---------------------------------------------------------------------------------
    def semantic_candidates(self, pkey: str) -> list[tuple[list[float], str]]:
        value = self.store.get(("s", pkey))
        return value if isinstance(value, list) else []

    def semantic_add(self, pkey: str, vector: list[float], key: str) -> None:
        with self.store.transact():
            entries = self.semantic_candidates(pkey)
            entries.append((vector, key))
            self.store.set(("s", pkey), entries[-2000:], expire=self.settings.ttl_s)

    def close(self) -> None:
        self.store.close()


def stats(directory: Path) -> tuple[int, int]:
    """(responses stored, bytes on disk)."""
    import diskcache

    with diskcache.Cache(str(directory)) as c:
        return sum(1 for k in c.iterkeys() if isinstance(k, tuple) and k[0] == "r"), c.volume()


def clear(directory: Path, older_than_s: float | None) -> int:
    import diskcache

    with diskcache.Cache(str(directory)) as c:
        if older_than_s is None:
            n = sum(1 for k in c.iterkeys() if isinstance(k, tuple) and k[0] == "r")
            c.clear()
            return n
        cutoff = time.time() - older_than_s
        n = 0
        for k in list(c.iterkeys()):
            if isinstance(k, tuple) and k[0] == "r":
                entry = c.get(k)
                if not isinstance(entry, dict) or entry.get("stored_s", 0) < cutoff:
                    n += c.delete(k)
        return n


def open_cache(settings: CacheSettings) -> ResponseCache | None:
    """The cache, or None with one warning when it cannot be used (the run goes on uncached)."""
    if not settings.enabled:
        return None
    try:
        return ResponseCache(settings)
    except Exception as e:  # a damaged or unwritable cache must not stop the run
        print(f"llmtrace: warning: response cache disabled ({type(e).__name__}: {e})", file=sys.stderr)
        return None


def completion_to_chunks(completion: dict[str, Any], with_usage: bool) -> list[dict[str, Any]]:
    """A stored completion replayed as the chunks a stream would have sent."""
    common = {k: completion.get(k) for k in ("id", "created", "model", "system_fingerprint")}
    common["object"] = "chat.completion.chunk"
    chunks: list[dict[str, Any]] = []
    for choice in completion.get("choices") or []:
        idx = choice.get("index", 0)
        msg = choice.get("message") or {}
        chunks.append({**common, "choices": [{"index": idx, "delta": {"role": "assistant", "content": msg.get("content") or ""}, "finish_reason": None}]})
        for i, tc in enumerate(msg.get("tool_calls") or []):
            delta = {"tool_calls": [{"index": i, "id": tc.get("id"), "type": "function", "function": tc.get("function")}]}
            chunks.append({**common, "choices": [{"index": idx, "delta": delta, "finish_reason": None}]})
        chunks.append({**common, "choices": [{"index": idx, "delta": {}, "finish_reason": choice.get("finish_reason")}]})
    if with_usage and completion.get("usage"):
        chunks.append({**common, "choices": [], "usage": completion["usage"]})
    return chunks


def chunks_to_completion(chunks: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The completion a finished stream amounts to (None when it never finished)."""
    if not chunks:
        return None
    first = chunks[0]
    choices: dict[int, dict[str, Any]] = {}
    usage = None
    for ch in chunks:
        if ch.get("usage"):
            usage = ch["usage"]
        for c in ch.get("choices") or []:
            slot = choices.setdefault(c.get("index", 0), {"content": [], "calls": {}, "finish_reason": None})
            delta = c.get("delta") or {}
            if delta.get("content"):
                slot["content"].append(delta["content"])
            for tc in delta.get("tool_calls") or []:
                call = slot["calls"].setdefault(tc.get("index", 0), {"id": None, "type": "function", "function": {"name": "", "arguments": ""}})
                call["id"] = tc.get("id") or call["id"]
                fn = tc.get("function") or {}
                call["function"]["name"] += fn.get("name") or ""
                call["function"]["arguments"] += fn.get("arguments") or ""
            if c.get("finish_reason"):
                slot["finish_reason"] = c["finish_reason"]
    if not choices or any(s["finish_reason"] is None for s in choices.values()):
        return None
    out_choices = []
    for idx in sorted(choices):
        s = choices[idx]
        message: dict[str, Any] = {"role": "assistant", "content": "".join(s["content"]) or None}
        if s["calls"]:
            message["tool_calls"] = [s["calls"][i] for i in sorted(s["calls"])]
        out_choices.append({"index": idx, "message": message, "finish_reason": s["finish_reason"], "logprobs": None})
    return {
        "id": first.get("id"), "object": "chat.completion", "created": first.get("created"), "model": first.get("model"),
        "system_fingerprint": first.get("system_fingerprint"), "choices": out_choices, "usage": usage,
    }
