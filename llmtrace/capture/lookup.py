"""A call's recorded answer: which slot of the cache it asks for, the look-up, and the answer stored after.

The cache is record/replay (see cache.py): the n-th identical request of a run gets the n-th answer
recorded for that request, so each request key is counted as the run asks it (`Occurrences`). With
`llmtrace replay`, the recorded trace answers instead (replay.ReplaySource).
"""

from __future__ import annotations

import threading
from array import array
from typing import Any

from llmtrace.capture import endpoints
from llmtrace.errors import warn_once
from llmtrace.store.cache import cosine, params_key, prompt_text, request_key


class Occurrences:
    """How often each request key has been asked in this run (the n-th ask replays the n-th answer).

    Keys are 64 bits of the request hash, kept in an open-addressing table of machine words: 16–32 bytes a
    distinct request, where a dict would take ~100, so a long run's memory stays flat (the soak test holds
    a 3,500-call run to its bound). The rare repeated keys are counted in a dict.
    """

    def __init__(self) -> None:
        self._slots = array("Q", [0]) * 1024
        self._used = 0
        self._repeats: dict[int, int] = {}
        self.lock = threading.Lock()

    def after_fork(self) -> None:
        """In a fork child: another thread of the parent may have held the lock at the fork."""
        self.lock = threading.Lock()

    def next(self, key: int) -> int:
        """The number of earlier asks of `key` in this run; counts this one."""
        with self.lock:
            return self._next(key or 1)  # 0 marks an empty slot

    def _next(self, key: int) -> int:
        slots = self._slots
        mask = len(slots) - 1
        i = key & mask
        while True:
            held = slots[i]
            if held == 0:
                slots[i] = key
                self._used += 1
                if self._used * 2 > len(slots):
                    self._grow()
                return 0
            if held == key:
                n = self._repeats.get(key, 1)
                self._repeats[key] = n + 1
                return n
            i = (i + 1) & mask

    def _grow(self) -> None:
        old = self._slots
        self._slots = array("Q", [0]) * (len(old) * 2)
        mask = len(self._slots) - 1
        for key in old:
            if key:
                i = key & mask
                while self._slots[i]:
                    i = (i + 1) & mask
                self._slots[i] = key


def cache_failed(error: BaseException) -> None:
    """A cache read, write or embedding that failed: the call goes to the provider; said once."""
    warn_once("cache", f"response cache trouble ({type(error).__name__}: {error}); calls it cannot serve go to the "
                       "provider")


def semantic_text(call: Any) -> str | None:
    """The prompt the semantic cache compares, or None when this call is for exact matches only."""
    settings = call.settings
    sem = settings.semantic
    if settings.cache is None or sem is None or call.endpoint is not endpoints.CHAT:
        return None
    messages = call.body.get("messages") or []
    if len(messages) > sem.semantic_max_messages or any(m.get("role") == "tool" for m in messages):
        return None  # long or tool-driven conversations: exact matches only
    return prompt_text(messages)


def find(call: Any, vector: list[float] | None = None) -> dict[str, Any] | None:
    """The recorded answer for this call's slot, or None on a miss (a replay's refusal is kept on the call)."""
    settings = call.settings
    if settings.replay is not None:
        answer = settings.replay.answer(call.endpoint.kind, call.endpoint.name, call.body)
        if isinstance(answer, BaseException):
            call.refusal = answer
            return None
        if answer is None:  # after a divergence, with --live-after-divergence
            return None
        call.hit, call.replay_failures = answer.entry, answer.failures
        options = call.body.get("stream_options")
        if answer.usage_asked and not (isinstance(options, dict) and options.get("include_usage")):
            call.hide_usage = True  # the recording asked for usage where the script did not: llmtrace did
        call.span.cache_hit = "replay"
        return answer.entry
    cache = settings.cache
    if cache is None:
        if settings.offline:  # the cache could not be opened: nothing can answer
            from llmtrace.errors import NoRecordedAnswer

            call.refusal = NoRecordedAnswer("llmtrace --offline: the response cache is not available; nothing was sent")
        return None
    base = request_key(call.body, call.base_url())
    n = 0 if settings.cache_mode == "reuse" else settings.occurrences.next(int(base[:16], 16))
    call.key = f"{base}.{n}"
    try:
        entry = cache.get(call.key)
    except Exception as e:  # a damaged entry is a miss
        cache_failed(e)
        entry = None
    similarity = None
    if entry is None and vector is not None:
        call.vector = vector
        try:
            candidates = cache.semantic_candidates(params_key(call.body, call.base_url()))
            best = max(((cosine(vector, v), k) for v, k in candidates), default=None)
            if best is not None and best[0] >= settings.semantic.threshold:
                entry = cache.get(best[1])
                similarity = best[0] if entry is not None else None
        except Exception as e:
            cache_failed(e)
    if entry is None:
        if settings.offline:  # nothing may be sent: the call fails at its call site (Call.admit)
            from llmtrace.capture.offline import refusal

            call.refusal = refusal(call, n)
        return None
    call.hit = entry
    call.span.cache_hit = "semantic" if similarity is not None else "exact"
    if similarity is not None:
        call.span.metadata["similarity"] = round(similarity, 4)
    return entry


def store(call: Any, parts: list[bytes], sse: bool) -> None:
    """A complete, successful live answer into the call's cache slot (redacted as the store is), or to a
    replay source that records (the pytest plugin's answer files)."""
    keep = getattr(call.settings.replay, "record", None)
    if keep is not None and call.hit is None and call.status is not None and 200 <= call.status < 300:
        try:
            keep(call.endpoint.name, call.body, call.status, parts, sse)
        except Exception as e:  # recording trouble never breaks the call
            cache_failed(e)
        return
    cache = call.settings.cache
    if cache is None or call.key is None or call.hit is not None or call.status is None or not 200 <= call.status < 300:
        return
    redactor = call.recorder.redactor
    if redactor is not None:  # a reply that echoes a key must not put it on disk
        try:
            texts = [p.decode("utf-8") for p in parts]
        except UnicodeDecodeError:
            return
        parts = [redactor.text(t).encode("utf-8") for t in texts]
    try:
        cache.set(call.key, call.status, call.headers, parts, sse)
        if call.vector is not None:
            cache.semantic_add(params_key(call.body, call.base_url()), call.vector, call.key)
    except Exception as e:  # a full or broken cache must not break the call
        cache_failed(e)
