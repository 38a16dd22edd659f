"""The call pipeline for openai SDK requests: look up → send with retries → record → store.

Every SDK call (chat.completions create/parse/stream, responses create/parse/stream, embeddings,
raw and streaming-response variants, sync and async) goes through the client's `request()`
once per logical call; that is where llmtrace sits. What the endpoint is only matters to the
small adapter `endpoints.for_path()` returns: the pipeline itself moves JSON and bytes.

- Look up: the response cache is record/replay (see cache.py). A replayed answer is handed to the
  SDK's own `_process_response` as an HTTP response, so the caller gets exactly the object (and
  the stream events) the live answer gave.
- Send with retries: llmtrace's policy replaces the SDK's default retries for the calls it wraps;
  a client built with an explicit `max_retries` keeps that budget. Nothing is changed on the
  caller's client: the per-request options say `max_retries=0` to the SDK while llmtrace retries.
- Record: the body is teed below the SDK's parser, so usage is recorded even when the SDK then
  fails to parse it. One HTTP exchange is one span: a LangChain LLM span opened just before claims
  the call; a bare SDK call gets a span of its own, parented to the current LangChain run.
"""

from __future__ import annotations

import functools
import json
import sys
import threading
import time
from array import array
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from llmtrace.capture import endpoints
from llmtrace.capture.cache import cosine, params_key, prompt_text, request_key
from llmtrace.capture.endpoints import Endpoint
from llmtrace.capture.serialize import parse_json_maybe
from llmtrace.model import Span
from llmtrace.core.recorder import Recorder, now_us

_recorder: Recorder | None = None


@dataclass(init=False, repr=False, eq=False)  # nothing generated when a run starts: its __init__ written out
class WireSettings:
    """What the SDK-level capture does besides recording: cache, retries, budget, replay."""

    cache: Any = None  # ResponseCache, or None for no caching
    retry: Any = None  # RetryPolicy, or None to leave retries to the SDK (library use)
    semantic: Any = None  # CacheSettings when the semantic cache is on
    # Base URLs that stand for a stable name in cache keys (the --mock server's port changes per run).
    url_aliases: dict[str, str] = field(default_factory=dict)
    # "replay": the n-th identical request of a run gets the n-th recorded answer (default);
    # "reuse": every identical request gets the first recorded answer, also within a run.
    cache_mode: str = "replay"
    budget: Any = None  # capture.budget.Budget: refuses calls once the run has spent its limits
    replay: Any = None  # capture.replay.ReplaySource: `llmtrace replay` answers calls from a trace

    def __init__(
        self, cache: Any = None, retry: Any = None, semantic: Any = None, url_aliases: dict[str, str] | None = None,
        cache_mode: str = "replay", budget: Any = None, replay: Any = None,
    ) -> None:
        self.cache, self.retry, self.semantic = cache, retry, semantic
        self.url_aliases = {} if url_aliases is None else url_aliases
        self.cache_mode, self.budget, self.replay = cache_mode, budget, replay


_settings = WireSettings()
_embedders: dict[tuple[str, str], Any] = {}
_cache_warned = False
# The call whose HTTP exchange is under way in this context (set around the SDK's request()).
_active: ContextVar["_Call | None"] = ContextVar("llmtrace_active_call", default=None)
# True while llmtrace makes a call of its own (semantic-cache embeddings): not traced, not cached.
_internal: ContextVar[bool] = ContextVar("llmtrace_internal_call", default=False)
# LLM spans opened by the callback handler in this context whose HTTP call has not been seen yet.
_expected: ContextVar[list[str] | None] = ContextVar("llmtrace_expected_llm_calls", default=None)
class Occurrences:
    """How often each request key has been asked in this run (the n-th ask replays the n-th answer).

    Keys are 64 bits of the request hash, kept in an open-addressing table of machine words: 16–32
    bytes a distinct request however long the run; the rare repeated ones are counted in a dict.
    """

    def __init__(self) -> None:
        self._slots = array("Q", [0]) * 1024
        self._used = 0
        self._repeats: dict[int, int] = {}

    def next(self, key: int) -> int:
        """The number of earlier asks of `key` in this run; counts this one."""
        key = key or 1  # 0 marks an empty slot
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
        self._used = 0
        for key in old:
            if key:
                self._insert(key)

    def _insert(self, key: int) -> None:
        slots = self._slots
        mask = len(slots) - 1
        i = key & mask
        while slots[i]:
            i = (i + 1) & mask
        slots[i] = key
        self._used += 1


_occurrences = Occurrences()
_occ_lock = threading.Lock()
_DROP_HEADERS = {"content-encoding", "content-length", "transfer-encoding", "connection", "keep-alive", "set-cookie"}


def set_recorder(recorder: Recorder | None) -> None:
    global _recorder
    _recorder = recorder


def configure(settings: WireSettings, keep_counts: bool = False) -> None:
    global _settings, _occurrences
    _settings = settings
    if not keep_counts:
        with _occ_lock:
            _occurrences = Occurrences()


def current_recorder() -> Recorder | None:
    return _recorder


def expect_call(span_id: str) -> None:
    rec = _recorder
    if rec is None:
        return
    # A fresh list per start keeps threads that copied this context from sharing one list.
    alive = [s for s in _expected.get() or [] if rec.get_open(s) is not None]
    _expected.set(alive + [span_id])


def _claim() -> Span | None:
    rec = _recorder
    pending = _expected.get()
    while pending and rec is not None:
        span = rec.get_open(pending.pop(0))
        if span is not None and span.request is None:
            return span
    return None


# A retriever runs its search without making itself the current run (no child config is set), so
# an embedding call inside it would hang under the chain around it: the handler notes it here.
_retriever: ContextVar[tuple[str, str | None] | None] = ContextVar("llmtrace_retriever", default=None)


def enter_retriever(span_id: str, parent_id: str | None) -> Any:
    return _retriever.set((span_id, parent_id))


def leave_retriever(token: Any) -> None:
    if token is None:
        return
    try:
        _retriever.reset(token)
    except ValueError:  # ended in another context than it started: nothing to undo here
        pass


def _langchain_parent() -> str | None:
    config_parent = None
    module = sys.modules.get("langchain_core.runnables.config")
    if module is not None:
        config = module.var_child_runnable_config.get() or {}
        parent = getattr(config.get("callbacks"), "parent_run_id", None)
        config_parent = None if parent is None else str(parent)
    retriever = _retriever.get()
    if retriever is not None and retriever[1] == config_parent:  # nothing started inside the retriever since
        return retriever[0]
    return config_parent


@functools.lru_cache(maxsize=256)
def _sdk_of(cls: type) -> str:
    return cls.__module__.split(".", 1)[0]


def _sdk(client: Any) -> str:
    """Which Stainless-built SDK the client belongs to: "openai" or "anthropic"."""
    return _sdk_of(type(client))


def _provider(client: Any) -> str:
    if _sdk(client) == "anthropic":
        return "anthropic"
    url = str(getattr(client, "base_url", "") or "")
    if "openai.azure.com" in url or "azure" in type(client).__name__.lower():
        return "azure"
    return "openai"


def _json_default(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, type):
        return value.__name__
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return repr(value)


class _NotPlain(Exception):
    pass


_LEAVES = (str, int, float, bool, type(None))


def _plain_copy(value: Any, depth: int = 0) -> Any:
    """json.loads(json.dumps(value)) for a value made of dicts with str keys, lists, tuples, str, int,
    float, bool and None only (the usual request body), without the text in between; raises _NotPlain
    for anything else (the caller then takes the JSON round trip, whose conversions it keeps)."""
    cls = type(value)
    if cls in _LEAVES:
        return value
    if depth > 64:  # deep or circular: the round trip decides
        raise _NotPlain
    if cls is dict:
        out = {}
        for k, v in value.items():
            if type(k) is not str:
                raise _NotPlain
            out[k] = v if type(v) in _LEAVES else _plain_copy(v, depth + 1)
        return out
    if cls is list or cls is tuple:
        return [v if type(v) in _LEAVES else _plain_copy(v, depth + 1) for v in value]
    raise _NotPlain


def _json_copy(body: dict[str, Any]) -> Any:
    """The body as JSON carries it: a copy of its own, with what JSON cannot hold converted by _json_default."""
    try:
        return _plain_copy(body)
    except _NotPlain:
        return json.loads(json.dumps(body, default=_json_default))


def _given(value: Any) -> bool:
    return type(value).__name__ not in ("NotGiven", "Omit")


def _cache_failed(error: BaseException) -> None:
    """A cache read, write or embedding that failed: the call goes to the provider; said once."""
    global _cache_warned
    if not _cache_warned:
        _cache_warned = True
        print(f"llmtrace: warning: response cache trouble ({type(error).__name__}: {error}); calls it cannot serve go to "
              "the provider", file=sys.stderr)


def _embedder(client: Any, model: str) -> Any:
    key = (str(client.base_url), model)
    if key not in _embedders:
        from langchain_openai import OpenAIEmbeddings

        # check_embedding_ctx_length=False: no tiktoken download, the text goes as is.
        _embedders[key] = OpenAIEmbeddings(
            model=model, base_url=str(client.base_url), api_key=client.api_key, check_embedding_ctx_length=False,
            max_retries=0,
        )
    return _embedders[key]


def _sdk_default_retries(sdk: str) -> int:
    constants = sys.modules.get(f"{sdk}._constants")
    return getattr(constants, "DEFAULT_MAX_RETRIES", 2)


class _Call:
    """One logical SDK call: its span, its cache slot, its attempts, and its response body."""

    is_async = False

    def __init__(self, client: Any, options: Any, endpoint: Endpoint, stream: bool):
        rec = _recorder
        assert rec is not None
        if rec.redactor is not None:
            rec.redactor.add_secret(getattr(client, "api_key", None))
        self.client, self.endpoint, self.stream = client, endpoint, stream
        # Unset parameters (NotGiven / Omit sentinels) are not sent: the anthropic SDK leaves them in json_data.
        body = {k: v for k, v in options.json_data.items() if _given(v)} if isinstance(options.json_data, dict) else {}
        extra = getattr(options, "extra_json", None)
        if isinstance(extra, dict):
            body.update(extra)
        self.hide_usage = False
        if stream and endpoint is endpoints.CHAT and isinstance(options.json_data, dict):
            opts = body.get("stream_options")
            opts = dict(opts) if isinstance(opts, dict) else {}
            if not opts.get("include_usage"):  # usage is asked for; the caller never sees the extra chunk
                opts["include_usage"] = True
                body["stream_options"] = opts
                # The SDK's options are left as they are: the changed ones are a copy.
                options = options.model_copy() if hasattr(options, "model_copy") else options.copy()
                options.json_data = {**options.json_data, "stream_options": opts}
                self.hide_usage = True
        self.options = options
        self.body = _json_copy(body)
        span = _claim() if endpoint.claims_llm_span else None
        self.own = span is None
        if span is None:
            span = rec.start_span(
                kind=endpoint.kind, name=endpoint.name, parent_id=_langchain_parent(),
                inputs=endpoint.inputs(self.body), model_requested=self.body.get("model"),
            )
        span.provider = span.provider or _provider(client)
        span.model_requested = span.model_requested or self.body.get("model")
        span.request = self.body
        self.span = span
        self.attempts = 0
        self.log: list[dict[str, Any]] = []
        self.key: str | None = None
        self.vector: list[float] | None = None
        self.hit: dict[str, Any] | None = None
        self.status: int | None = None
        self.headers: list[list[str]] = []
        self.body_finished = False
        self.sse = False
        self.returned_ok = False
        self.refusal: BaseException | None = None  # raised at the call site instead of sending (replay divergence)
        self.replay_failures: list[dict[str, Any]] = []
        self._base: str | None = None  # the client's base URL as text, once asked for
        self._url: str | None = None
        self._sdk_retries: tuple[Any, bool] | None = None  # (max_retries, was unset) while send_plan set 0
        self.t0 = time.perf_counter()

    # -- cache ------------------------------------------------------------------------------------
    def base_text(self) -> str:
        base = self._base
        if base is None:
            base = self._base = _base_text(self.client)
        return base

    def base_url(self) -> str:
        url = self._url
        if url is None:
            base = self.base_text()
            url = self._url = _settings.url_aliases.get(base, base) + "/" + str(self.options.url).lstrip("/")
        return url

    def semantic_text(self) -> str | None:
        sem = _settings.semantic
        if _settings.cache is None or sem is None or self.endpoint is not endpoints.CHAT:
            return None
        messages = self.body.get("messages") or []
        if len(messages) > sem.semantic_max_messages or any(m.get("role") == "tool" for m in messages):
            return None  # long or tool-driven conversations: exact matches only
        return prompt_text(messages)

    def lookup(self, vector: list[float] | None = None) -> dict[str, Any] | None:
        """The recorded answer for this call's slot, or None on a miss."""
        if _settings.replay is not None:
            answer = _settings.replay.answer(self.endpoint.kind, self.endpoint.name, self.body)
            if isinstance(answer, BaseException):
                self.refusal = answer
                return None
            if answer is None:  # after a divergence, with --live-after-divergence
                return None
            self.hit, self.replay_failures = answer.entry, answer.failures
            self.span.cache_hit = "replay"
            return answer.entry
        cache = _settings.cache
        if cache is None:
            return None
        base = request_key(self.body, self.base_url())
        if _settings.cache_mode == "reuse":
            n = 0
        else:
            with _occ_lock:
                n = _occurrences.next(int(base[:16], 16))
        self.key = f"{base}.{n}"
        try:
            entry = cache.get(self.key)
        except Exception as e:  # a damaged entry is a miss
            _cache_failed(e)
            entry = None
        similarity = None
        if entry is None and vector is not None:
            self.vector = vector
            try:
                best = max(((cosine(vector, v), k) for v, k in cache.semantic_candidates(params_key(self.body, self.base_url()))),
                           default=None)
                if best is not None and best[0] >= _settings.semantic.threshold:
                    entry = cache.get(best[1])
                    similarity = best[0] if entry is not None else None
            except Exception as e:
                _cache_failed(e)
        if entry is None:
            return None
        self.hit = entry
        self.span.cache_hit = "semantic" if similarity is not None else "exact"
        if similarity is not None:
            self.span.metadata["similarity"] = round(similarity, 4)
        return entry

    def replay_response(self, entry: dict[str, Any], final: bool = False) -> Any:
        """A recorded answer as the httpx response the SDK would have received. The `final` answer of a
        call, read whole and not an error, goes into the span here: the SDK takes it as it is, so the
        tee `on_response` puts on a live answer has nothing to do."""
        request = _replay_request(self.client, self.options, self.base_text())
        httpx = sys.modules[type(request).__module__.split(".")[0]]
        headers = [*entry["headers"], ["x-llmtrace-cache", "hit"]]
        if entry["sse"] or (self.stream and entry["status"] < 400):  # an error answer is read whole
            _, _, replay = _stream_classes(httpx)
            return httpx.Response(entry["status"], headers=headers, stream=replay(list(entry["parts"])), request=request)
        body = b"".join(entry["parts"])
        response = _whole_response(httpx, entry["status"], headers, body, request)
        if final and entry["status"] < 400:
            self.status = entry["status"]  # the headers are kept only to store an answer: a hit stores none
            try:
                self.body_done([body], None, True)
            except Exception:  # recording trouble never reaches the caller
                pass
        return response

    def store(self, parts: list[bytes], sse: bool) -> None:
        cache = _settings.cache
        if cache is None or self.key is None or self.hit is not None or self.status is None or not 200 <= self.status < 300:
            return
        redactor = _recorder.redactor if _recorder is not None else None
        if redactor is not None:  # a reply that echoes a key must not put it on disk
            try:
                texts = [p.decode("utf-8") for p in parts]
            except UnicodeDecodeError:
                return
            parts = [redactor.text(t).encode("utf-8") for t in texts]
        try:
            cache.set(self.key, self.status, self.headers, parts, sse)
            if self.vector is not None:
                cache.semantic_add(params_key(self.body, self.base_url()), self.vector, self.key)
        except Exception as e:  # a full or broken cache must not break the call
            _cache_failed(e)

    def admit(self, hit: dict[str, Any] | None) -> None:
        """Before anything is sent: a replay divergence or a spent budget raises here, at the call site."""
        if self.refusal is not None:
            raise self.refusal
        if hit is None and _settings.budget is not None:
            _settings.budget.admit()

    def replayed(self, client: Any, hit: dict[str, Any]) -> Any:
        """The recorded answer as a response; its recorded failed attempts (--with-failures) and a recorded
        final failure raise as the SDK raises them."""
        for failure in self.replay_failures:
            self.before()
            self.attempt_failed(client._make_status_error_from_response(self.replay_response(failure)))
        if self.replay_failures:
            self.before()
        response = self.replay_response(hit, final=True)
        if response.status_code >= 400:
            raise client._make_status_error_from_response(response)
        return response

    # -- the response body (a Sink for the tee) ---------------------------------------------------
    def on_response(self, response: Any) -> None:
        """The SDK is about to parse `response` (live or replayed): tee its body into the span."""
        self.status = response.status_code
        headers = response.headers
        # The two headers that matter here, found among the raw ones and only theirs decoded: httpx
        # decodes every header for items() (~5,000 instructions each), and its get() raises KeyError
        # for a missing one. Repeated ones are joined with ", ", as get() does.
        content_type, encoding = "", "identity"
        for k, v in headers.raw:
            k = k.lower()
            if k == b"content-type":
                content_type = f"{content_type}, {v.decode('latin-1')}" if content_type else v.decode("latin-1")
            elif k == b"content-encoding":
                encoding = v.decode("latin-1")
        if self.key is not None:  # an answer for the cache: its headers are kept with it
            self.headers = [[k, v] for k, v in headers.items() if k.lower() not in _DROP_HEADERS]
        sse = self.sse = content_type.startswith("text/event-stream")
        encoded = encoding.lower() not in ("", "identity")
        if hasattr(response, "_content"):  # already read (a non-streamed send)
            self.body_done([response.content], None, True)
            return
        if encoded:  # compressed bytes under the decoder: record them whole, as they came
            if self.key is not None:
                self.headers = [[k, v] for k, v in headers.items() if k.lower() not in _DROP_HEADERS - {"content-encoding"}]
            sse = self.sse = False
        httpx = sys.modules[type(response).__module__.split(".")[0]]
        tee, atee, _ = _stream_classes(httpx)
        response.stream = (atee if self.is_async else tee)(response.stream, self, sse)

    def first_bytes(self) -> None:
        if self.span.first_token_us is None:
            self.span.first_token_us = now_us()

    def hidden(self, event: bytes) -> bool:
        if not self.hide_usage or b'"usage"' not in event:
            return False
        data = _event_json(event)
        return isinstance(data, dict) and self.endpoint.hidden_event(data)

    def body_done(self, parts: list[bytes], error: BaseException | None, exhausted: bool) -> None:
        if self.body_finished:
            return
        self.body_finished = True
        span = self.span
        body = b"".join(parts)
        events = _sse_events(body) if self.sse else None
        complete = exhausted and error is None
        try:
            if events is not None:
                span.streamed = True
                datas = [e for e in (_event_json(ev) for ev in events) if isinstance(e, dict)]
                span.metadata["chunks"] = len(datas)  # events as the provider sent them (with time to first: first_token_us)
                self.endpoint.read_events(span, datas, self.own)
                # The SDK stops reading at [DONE] (chat) and may close before the end of a Responses stream.
                complete = complete or any(ev.strip().endswith(b"[DONE]") or b'"response.completed"' in ev
                                           or b'"message_stop"' in ev for ev in events[-2:])
            else:
                data = parse_json_maybe(body.decode("utf-8", "replace"))
                if isinstance(data, dict):
                    self.endpoint.read(span, data, self.own)
        except Exception:  # an odd body must not break the call; the span keeps what it had
            pass
        if complete:
            self.store(events if events is not None else parts, events is not None)
        if self.own and _recorder is not None and (self.returned_ok or error is not None):
            _recorder.end_span(span, error=error)

    # -- attempts ---------------------------------------------------------------------------------
    def retry_budget(self) -> int | None:
        """Retries llmtrace makes for this call, or None to leave them to the SDK."""
        policy = _settings.retry
        if policy is None:
            return None
        per_request = getattr(self.options, "max_retries", None)
        if isinstance(per_request, int):
            return per_request
        mine = getattr(self.client, "max_retries", None)
        if isinstance(mine, int) and mine != _sdk_default_retries(_sdk(self.client)):
            return mine  # the script chose a budget: keep it
        return policy.retries

    def send_plan(self) -> tuple[int | None, Any]:
        """(retries llmtrace makes, or None; the request options to send with).

        With llmtrace's retries, the SDK's own are turned off on the request's options for the call:
        one layer owns the retry budget. `restore_options` puts them back when the call is over. The
        SDK makes fresh options for each request; a copy would cost more than the rest of the call's
        set-up (pydantic's model_copy, ~17,000 instructions)."""
        budget = self.retry_budget()
        options = self.options
        if budget is not None:
            fields = getattr(options, "__pydantic_fields_set__", None)
            self._sdk_retries = (options.max_retries, fields is not None and "max_retries" not in fields)
            options.max_retries = 0
        return budget, options

    def restore_options(self) -> None:
        """The options' max_retries as they were before `send_plan` (and pydantic's note of it)."""
        saved = self._sdk_retries
        if saved is None:
            return
        self._sdk_retries = None
        options = self.options
        if options.max_retries == 0:  # else someone else changed it since: theirs stays
            options.max_retries = saved[0]
            if saved[1]:
                options.__pydantic_fields_set__.discard("max_retries")

    def before(self) -> None:
        self.attempts += 1

    def attempt_failed(self, error: BaseException) -> None:
        from llmtrace.capture.retry import describe

        self.log.append({"attempt": self.attempts, **describe(error)})

    def on_sleep(self, seconds: float) -> None:
        if self.log:
            self.log[-1]["wait_s"] = round(seconds, 3)

    def _note_attempts(self) -> None:
        if _settings.retry is not None:
            self.span.attempts = self.attempts
        if self.log:
            self.span.metadata["attempt_log"] = self.log

    def failed(self, error: BaseException) -> None:
        self._note_attempts()
        if not isinstance(error, (KeyboardInterrupt, SystemExit)):
            self.span.metadata.setdefault("http_errors", []).append(f"{type(error).__name__}: {error}"[:500])
        if self.own and _recorder is not None:
            _recorder.end_span(self.span, error=error)

    def returned(self) -> None:
        self._note_attempts()
        self.span.metadata["latency_ms"] = round((time.perf_counter() - self.t0) * 1000, 3)
        self.returned_ok = True
        if self.own and self.body_finished and _recorder is not None:
            _recorder.end_span(self.span)

    def with_retries(self, budget: int, attempt: Callable[[], Any]) -> Any:
        """attempt(), retried per the policy. The first attempt runs bare: the retry machinery (a
        tenacity Retrying) is built only when it fails, and is handed that failure as its attempt 1."""
        try:
            return attempt()
        except Exception as e:
            failed = [e]

        def again() -> Any:
            if failed:
                raise failed.pop()
            return attempt()

        return self.retrying(budget)(again)

    async def with_retries_async(self, budget: int, attempt: Callable[[], Any]) -> Any:
        try:
            return await attempt()
        except Exception as e:
            failed = [e]

        async def again() -> Any:
            if failed:
                raise failed.pop()
            return await attempt()

        return await self.retrying(budget)(again)

    def retrying(self, budget: int) -> Any:
        from llmtrace.capture.retry import make_retrying

        return make_retrying(replace(_settings.retry, retries=budget), self.on_sleep, is_async=self.is_async)


_replay_requests: dict[tuple[Any, str, str], Any] = {}


_url_texts: dict[int, tuple[Any, str]] = {}  # id(base_url) → (that URL object, its text)


def _base_text(client: Any) -> str:
    """The client's base URL as text, without a trailing slash. httpx builds a URL's text anew on every
    str() (and hashes it by that text), so it is remembered by the URL object's identity: an SDK client
    holds one URL object until its base_url is set again."""
    url = client.base_url
    known = _url_texts.get(id(url))
    if known is not None and known[0] is url:
        return known[1]
    text = str(url).rstrip("/")
    if len(_url_texts) >= 64:
        _url_texts.clear()
    _url_texts[id(url)] = (url, text)
    return text


def _replay_request(client: Any, options: Any, base: str) -> Any:
    """The request a replayed answer hangs on: a plain httpx Request for the call's URL and per-call
    headers, made once for each (the SDK's own _build_request, with every header and the body, costs
    ~0.5 ms a call for a request that is never sent)."""
    method = str(getattr(options, "method", "post")).upper()
    url = base + "/" + str(options.url).lstrip("/")
    # The per-call headers go along: the SDK reads X-Stainless-Raw-Response back from the request to
    # decide whether the caller asked for the raw response (LangChain does).
    given = getattr(options, "headers", None)
    headers = tuple(sorted((k, v) for k, v in given.items() if isinstance(v, str))) if isinstance(given, dict) else ()
    key = (type(getattr(client, "_client", None)), method, url, headers)
    request = _replay_requests.get(key)
    if request is None:
        httpx = _httpx_of(client)
        if httpx is not None:
            request = httpx.Request(method, url, headers=list(headers))
        else:  # an SDK shaped otherwise: its own request builder
            try:
                request = client._build_request(options)
            except TypeError:  # pragma: no cover - older signature
                request = client._build_request(options, retries_taken=0)
        if len(_replay_requests) < 256:
            _replay_requests[key] = request
    return request


_whole_ok: dict[str, bool] = {}  # httpx module name → the shortcut below makes what its constructor makes
_whole_decoder: dict[str, type] = {}  # httpx module name → the decoder class its constructor leaves on a response
_BODY_HEADERS = {"content-length", "content-encoding", "transfer-encoding"}


def _whole_response(httpx: Any, status: int, headers: list[list[str]], body: bytes, request: Any) -> Any:
    """httpx.Response(status, headers=headers, content=body, request=request), in a fifth of the time.
    The constructor reads the body it was given through httpx's decoder chain (~35 µs with httpx2, most
    of a cache hit); a recorded body needs no decoding, so the response is built around a stream and
    given what that read would have set. Whether the two are alike is checked once for each httpx, on
    the first answer: attribute by attribute, the headers as raw bytes; if not, the constructor it is."""
    ok = _whole_ok.get(httpx.__name__)
    if ok is not False and body and not _speaks_of_body(headers):  # b"": no Content-Length
        try:
            response = httpx.Response(status, headers=[*headers, ("Content-Length", str(len(body)))],
                                      stream=httpx.ByteStream(body), request=request)
            response._content = body
            response.is_closed = response.is_stream_consumed = True
            if ok is None:
                reference = httpx.Response(status, headers=headers, content=body, request=request)
                if not _alike(httpx.__name__, response, reference):
                    _whole_ok[httpx.__name__] = False
                    return reference
                _whole_ok[httpx.__name__] = True
            response._decoder = _whole_decoder[httpx.__name__]()
            return response
        except Exception:  # an httpx unlike the one this was written for
            _whole_ok[httpx.__name__] = False
    return httpx.Response(status, headers=headers, content=body, request=request)


def _speaks_of_body(headers: list[list[str]]) -> bool:
    """Whether the headers give the body's length or encoding (the constructor then keeps theirs)."""
    for k, _ in headers:
        if k.lower() in _BODY_HEADERS:
            return True
    return False


def _alike(name: str, response: Any, reference: Any) -> bool:
    mine, theirs = dict(vars(response)), dict(vars(reference))
    decoder = theirs.pop("_decoder", None)
    if decoder is None or mine.pop("_decoder", None) is not None:
        return False
    _whole_decoder[name] = type(decoder)
    if type(mine.pop("stream")) is not type(theirs.pop("stream")):
        return False
    if mine.pop("headers").raw != theirs.pop("headers").raw:
        return False
    return mine == theirs


def _httpx_of(client: Any) -> Any:
    """The httpx module (by whatever name it is installed) the SDK client's HTTP client comes from: the
    first package in its class's ancestry that has both Request and Response (a wrapper class, such as
    langchain-openai's, comes first and has neither)."""
    for k in type(getattr(client, "_client", None)).__mro__:
        module = sys.modules.get(k.__module__.split(".")[0])
        if isinstance(getattr(module, "Request", None), type) and isinstance(getattr(module, "Response", None), type):
            return module
    return None


def _stream_classes(httpx: Any) -> tuple[type, type, type]:
    from llmtrace.capture.streams import stream_classes

    return stream_classes(httpx.__name__)


def _sse_events(body: bytes) -> list[bytes]:
    from llmtrace.capture.streams import split_events

    events, rest = split_events(body)
    return events + ([rest] if rest.strip() else [])


def _event_json(event: bytes) -> Any:
    """The JSON of one server-sent event's data lines, or None ([DONE], comments, damage)."""
    lines = [ln[5:].lstrip() for ln in event.splitlines() if ln.startswith(b"data:")]
    if not lines:
        return None
    data = b"\n".join(lines)
    if data.strip() == b"[DONE]":
        return None
    try:
        return json.loads(data)
    except ValueError:
        return None


_endpoint_for = functools.lru_cache(maxsize=1024)(endpoints.for_path)  # (sdk, method, url) → its adapter, or None


def _begin(client: Any, options: Any, stream: bool) -> "_Call | None":
    """The call to trace, or None when this request is not one llmtrace traces."""
    if _recorder is None or _internal.get() or _active.get() is not None:
        return None
    endpoint = _endpoint_for(_sdk(client), str(getattr(options, "method", "")), str(getattr(options, "url", "")))
    if endpoint is None:
        return None
    return _Call(client, options, endpoint, stream)


def _wrap_request_sync(orig: Any) -> Any:
    @functools.wraps(orig)
    def request(self: Any, cast_to: Any, options: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            call = None if args else _begin(self, options, bool(kwargs.get("stream")))
            if call is not None:
                text = call.semantic_text()
                vector = None
                if text is not None:
                    token = _internal.set(True)
                    try:
                        vector = _embedder(self, _settings.semantic.embedding_model).embed_query(text)
                    except Exception as e:
                        _cache_failed(e)
                    finally:
                        _internal.reset(token)
                hit = call.lookup(vector)
        except Exception:  # recording trouble: make the call untraced rather than fail it
            call = None
        if call is None:
            return orig(self, cast_to, options, *args, **kwargs)
        token = _active.set(call)
        try:
            call.admit(hit)
            if hit is not None:
                result = self._process_response(cast_to=cast_to, options=call.options, response=call.replayed(self, hit),
                                                stream=bool(kwargs.get("stream")), stream_cls=kwargs.get("stream_cls"))
            else:
                budget, options = call.send_plan()

                def attempt() -> Any:
                    call.before()
                    try:
                        return orig(self, cast_to, options, **kwargs)
                    except BaseException as e:
                        call.attempt_failed(e)
                        raise

                result = attempt() if budget is None else call.with_retries(budget, attempt)
        except BaseException as e:
            call.failed(e)
            raise
        finally:
            _active.reset(token)
            call.restore_options()
        call.returned()
        return result

    request.__llmtrace_wrapped__ = True  # type: ignore[attr-defined]
    return request


def _wrap_request_async(orig: Any) -> Any:
    @functools.wraps(orig)
    async def request(self: Any, cast_to: Any, options: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            call = None if args else _begin(self, options, bool(kwargs.get("stream")))
            if call is not None:
                call.is_async = True
                text = call.semantic_text()
                vector = None
                if text is not None:
                    token = _internal.set(True)
                    try:
                        vector = await _embedder(self, _settings.semantic.embedding_model).aembed_query(text)
                    except Exception as e:
                        _cache_failed(e)
                    finally:
                        _internal.reset(token)
                hit = call.lookup(vector)
        except Exception:
            call = None
        if call is None:
            return await orig(self, cast_to, options, *args, **kwargs)
        token = _active.set(call)
        try:
            call.admit(hit)
            if hit is not None:
                result = await self._process_response(
                    cast_to=cast_to, options=call.options, response=call.replayed(self, hit),
                    stream=bool(kwargs.get("stream")), stream_cls=kwargs.get("stream_cls"),
                )
            else:
                budget, options = call.send_plan()

                async def attempt() -> Any:
                    call.before()
                    try:
                        return await orig(self, cast_to, options, **kwargs)
                    except BaseException as e:
                        call.attempt_failed(e)
                        raise

                result = await (attempt() if budget is None else call.with_retries_async(budget, attempt))
        except BaseException as e:
            call.failed(e)
            raise
        finally:
            _active.reset(token)
            call.restore_options()
        call.returned()
        return result

    request.__llmtrace_wrapped__ = True  # type: ignore[attr-defined]
    return request


def _seen(response: Any) -> None:
    call = _active.get()
    if call is not None and call.status is None and response is not None:
        try:
            call.on_response(response)
        except Exception:  # recording trouble never reaches the caller
            pass


def _wrap_process_sync(orig: Any) -> Any:
    @functools.wraps(orig)
    def _process_response(self: Any, *args: Any, **kwargs: Any) -> Any:
        _seen(kwargs.get("response"))
        return orig(self, *args, **kwargs)

    _process_response.__llmtrace_wrapped__ = True  # type: ignore[attr-defined]
    return _process_response


def _wrap_process_async(orig: Any) -> Any:
    @functools.wraps(orig)
    async def _process_response(self: Any, *args: Any, **kwargs: Any) -> Any:
        _seen(kwargs.get("response"))
        return await orig(self, *args, **kwargs)

    _process_response.__llmtrace_wrapped__ = True  # type: ignore[attr-defined]
    return _process_response


def patch_sdk(base: Any) -> None:
    """Wrap request() and _process_response() of an SDK's `_base_client` module (openai, anthropic:
    both are generated by Stainless and share this structure)."""
    sync, async_ = base.SyncAPIClient, base.AsyncAPIClient
    if not getattr(sync.request, "__llmtrace_wrapped__", False):
        sync.request = _wrap_request_sync(sync.request)
        async_.request = _wrap_request_async(async_.request)
        sync._process_response = _wrap_process_sync(sync._process_response)
        async_._process_response = _wrap_process_async(async_._process_response)
