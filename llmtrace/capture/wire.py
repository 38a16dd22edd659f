"""Wire-level capture of openai SDK chat calls: the request body as sent, the response as received.

One HTTP call gives one span. When a LangChain chat model is making the call, its LLM span (opened
by the callback handler just before) receives the payloads; a bare `openai` call gets a span of its
own, parented to whatever LangChain run is current. Streams are wrapped so chunks are recorded as
the caller consumes them, and usage is always requested (`stream_options.include_usage`); when the
caller did not ask for it, the extra usage-only chunk is kept from them.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from llmtrace.capture.cache import chunks_to_completion, completion_to_chunks, cosine, params_key, prompt_text, request_key
from llmtrace.capture.serialize import parse_json_maybe
from llmtrace.model import Span, SpanKind
from llmtrace.recorder import Recorder, now_us

_recorder: Recorder | None = None


@dataclass
class WireSettings:
    cache: Any = None  # ResponseCache, or None for no caching
    retry: Any = None  # RetryPolicy, or None to leave retries to the SDK (library use)
    semantic: Any = None  # CacheSettings when the semantic cache is on
    # Base URLs that stand for a stable name in cache keys (the --mock server's port changes per run).
    url_aliases: dict[str, str] = field(default_factory=dict)


_settings = WireSettings()
_embedders: dict[tuple[str, str], Any] = {}
_cache_warned = False
_RAW_HEADER = "x-stainless-raw-response"
# LLM spans opened by the callback handler in this context whose HTTP call has not been seen yet.
_expected: ContextVar[list[str] | None] = ContextVar("llmtrace_expected_llm_calls", default=None)
_NOT_BODY = {"extra_headers", "extra_query", "extra_body", "timeout"}


def set_recorder(recorder: Recorder | None) -> None:
    global _recorder
    _recorder = recorder


def configure(settings: WireSettings) -> None:
    global _settings
    _settings = settings


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


def _langchain_parent() -> str | None:
    try:
        from langchain_core.runnables.config import var_child_runnable_config
    except ImportError:
        return None
    config = var_child_runnable_config.get() or {}
    manager = config.get("callbacks")
    parent = getattr(manager, "parent_run_id", None)
    return None if parent is None else str(parent)


def _provider(client: Any) -> str:
    url = str(getattr(client, "base_url", "") or "")
    if "openai.azure.com" in url or "azure" in type(client).__name__.lower():
        return "azure"
    return "openai"


def _body(kwargs: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in kwargs.items() if k not in _NOT_BODY and not _is_omitted(v)}
    extra = kwargs.get("extra_body")
    if isinstance(extra, dict):
        body.update(extra)
    return json.loads(json.dumps(body, default=_json_default))


def _is_omitted(value: Any) -> bool:
    return type(value).__name__ in ("NotGiven", "Omit")


def _json_default(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, type):
        return value.__name__
    return repr(value)


def _as_dict(obj: Any) -> dict[str, Any]:
    if isinstance(obj, dict):
        return obj
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    return {"repr": repr(obj)}


def _apply_usage(span: Span, usage: dict[str, Any] | None) -> None:
    if not usage:
        return
    span.input_tokens = usage.get("prompt_tokens", usage.get("input_tokens"))
    span.output_tokens = usage.get("completion_tokens", usage.get("output_tokens"))
    span.cached_tokens = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    span.reasoning_tokens = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens")


def _tool_calls(raw: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    if not raw:
        return None
    return [
        {"name": (tc.get("function") or {}).get("name"), "args": parse_json_maybe((tc.get("function") or {}).get("arguments")), "id": tc.get("id")}
        for tc in raw
    ]


def _apply_completion(span: Span, data: dict[str, Any], own: bool) -> None:
    span.response = data
    span.model = data.get("model") or span.model
    _apply_usage(span, data.get("usage"))
    choices = data.get("choices") or []
    if choices:
        choice = choices[0]
        message = choice.get("message") or {}
        span.finish_reason = choice.get("finish_reason")
        span.tool_calls = _tool_calls(message.get("tool_calls"))
        if own:
            span.outputs = {"content": message.get("content"), **({"tool_calls": span.tool_calls} if span.tool_calls else {})}


class _Assembler:
    """Builds the final message of a stream from its chunks, and keeps the chunks."""

    def __init__(self, span: Span, own: bool, hide_usage: bool, on_complete: Any = None):
        self.span, self.own, self.hide_usage = span, own, hide_usage
        self.on_complete = on_complete
        self.chunks: list[dict[str, Any]] = []
        self.content: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.finished = False

    def add(self, chunk: Any) -> bool:
        """Record one chunk; False when the caller must not see it."""
        data = _as_dict(chunk)
        self.chunks.append(data)
        span = self.span
        if span.first_token_us is None:
            span.first_token_us = now_us()
        span.model = data.get("model") or span.model
        choices = data.get("choices") or []
        if data.get("usage"):
            _apply_usage(span, data["usage"])
        for choice in choices:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                self.content.append(delta["content"])
            for tc in delta.get("tool_calls") or []:
                slot = self.calls.setdefault(tc.get("index", 0), {"id": None, "function": {"name": "", "arguments": ""}})
                slot["id"] = tc.get("id") or slot["id"]
                fn = tc.get("function") or {}
                slot["function"]["name"] += fn.get("name") or ""
                slot["function"]["arguments"] += fn.get("arguments") or ""
            if choice.get("finish_reason"):
                span.finish_reason = choice["finish_reason"]
        return not (self.hide_usage and not choices and data.get("usage"))

    def finish(self, error: BaseException | None = None) -> None:
        if self.finished:
            return
        self.finished = True
        span = self.span
        span.streamed = True
        span.response = {"stream": True, "chunks": self.chunks}
        span.tool_calls = _tool_calls([self.calls[i] for i in sorted(self.calls)]) or span.tool_calls
        if error is None and self.on_complete is not None:
            completion = chunks_to_completion(self.chunks)
            if completion is not None:
                self.on_complete(completion)
        if self.own:
            span.outputs = {"content": "".join(self.content) or None, **({"tool_calls": span.tool_calls} if span.tool_calls else {})}
            if _recorder is not None:
                _recorder.end_span(span, error=error)


class _StreamProxy:
    def __init__(self, stream: Any, asm: _Assembler):
        self._stream, self._asm = stream, asm
        self._it = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __iter__(self) -> "_StreamProxy":
        return self

    def __next__(self) -> Any:
        if self._it is None:
            self._it = iter(self._stream)
        while True:
            try:
                chunk = next(self._it)
            except StopIteration:
                self._asm.finish()
                raise
            except BaseException as e:
                self._asm.finish(e)
                raise
            if self._asm.add(chunk):
                return chunk

    def __enter__(self) -> "_StreamProxy":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._asm.finish()


class _AsyncStreamProxy:
    def __init__(self, stream: Any, asm: _Assembler):
        self._stream, self._asm = stream, asm
        self._it = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __aiter__(self) -> "_AsyncStreamProxy":
        return self

    async def __anext__(self) -> Any:
        if self._it is None:
            self._it = self._stream.__aiter__()
        while True:
            try:
                chunk = await self._it.__anext__()
            except StopAsyncIteration:
                self._asm.finish()
                raise
            except BaseException as e:
                self._asm.finish(e)
                raise
            if self._asm.add(chunk):
                return chunk

    async def __aenter__(self) -> "_AsyncStreamProxy":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        try:
            await self._stream.close()
        finally:
            self._asm.finish()


class _Replay:
    """A cached answer served as the stream the caller asked for."""

    def __init__(self, chunks: list[dict[str, Any]]):
        from openai.types.chat import ChatCompletionChunk

        self._items = iter([ChatCompletionChunk.model_validate(c) for c in chunks])
        self.response = None

    def __iter__(self) -> "_Replay":
        return self

    def __next__(self) -> Any:
        return next(self._items)

    def __aiter__(self) -> "_Replay":
        return self

    async def __anext__(self) -> Any:
        try:
            return next(self._items)
        except StopIteration:
            raise StopAsyncIteration from None

    def __enter__(self) -> "_Replay":
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    async def __aenter__(self) -> "_Replay":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        pass

    def close(self) -> None:
        pass


class _AsyncReplay(_Replay):
    async def close(self) -> None:  # type: ignore[override]
        pass


def _raw_response(client: Any, completion: dict[str, Any], body: dict[str, Any]) -> Any:
    """A cached completion as the SDK's own raw-response object (what with_raw_response returns)."""
    from openai._legacy_response import LegacyAPIResponse
    from openai._models import FinalRequestOptions
    from openai.types.chat import ChatCompletion

    try:
        import httpx2 as httpx  # the transport newer openai releases use
    except ImportError:  # pragma: no cover
        import httpx  # type: ignore[no-redef]
    url = str(client.base_url).rstrip("/") + "/chat/completions"
    raw = httpx.Response(200, json=completion, headers={"x-llmtrace-cache": "hit"}, request=httpx.Request("POST", url))
    options = FinalRequestOptions.construct(method="post", url="/chat/completions", json_data=body)
    return LegacyAPIResponse(raw=raw, cast_to=ChatCompletion, client=client, stream=False, stream_cls=None, options=options)


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


def _cache_failed(error: BaseException) -> None:
    """A cache read, write or embedding that failed: the call goes to the provider; said once."""
    global _cache_warned
    if not _cache_warned:
        _cache_warned = True
        print(f"llmtrace: warning: response cache trouble ({type(error).__name__}: {error}); calls it cannot serve go to "
              "the provider", file=sys.stderr)


class _Call:
    """Book-keeping for one chat.completions.create call: span, cache lookup, attempts."""

    def __init__(self, client: Any, kwargs: dict[str, Any]):
        rec = _recorder
        assert rec is not None
        if rec.redactor is not None:
            rec.redactor.add_secret(getattr(client, "api_key", None))
        self.client = client
        self.kwargs = dict(kwargs)
        self.stream = self.kwargs.get("stream") is True
        self.hide_usage = False
        if self.stream:
            opts = self.kwargs.get("stream_options")
            opts = dict(opts) if isinstance(opts, dict) else {}
            if not opts.get("include_usage"):
                opts["include_usage"] = True
                self.kwargs["stream_options"] = opts
                self.hide_usage = True
        span = _claim()
        self.own = span is None
        if span is None:
            span = rec.start_span(
                kind=SpanKind.LLM.value, name="openai.chat.completions", parent_id=_langchain_parent(),
                inputs={"messages": parse_json_maybe(json.dumps(self.kwargs.get("messages"), default=_json_default))},
                model_requested=self.kwargs.get("model"),
            )
        else:
            self.hide_usage = False  # LangChain reads the usage chunk itself
        span.provider = span.provider or _provider(client)
        span.model_requested = span.model_requested or self.kwargs.get("model")
        span.request = _body(self.kwargs)
        self.span = span
        self.attempts = 0
        self.log: list[dict[str, Any]] = []
        self.key: str | None = None
        self.vector: list[float] | None = None
        headers = {str(k).lower() for k in (self.kwargs.get("extra_headers") or {})}
        self.raw = _RAW_HEADER in headers  # with_raw_response: the caller wants the HTTP response object
        # A raw *stream* cannot be replayed faithfully; everything else can.
        self.cache = None if (self.raw and self.stream) else _settings.cache
        if _settings.retry is not None:
            client.max_retries = 0  # one layer owns the retry budget: ours
        self.t0 = time.perf_counter()

    # -- cache ------------------------------------------------------------------------------------
    def base_url(self) -> str:
        url = str(self.client.base_url).rstrip("/")
        return _settings.url_aliases.get(url, url)

    def semantic_text(self) -> str | None:
        sem = _settings.semantic
        if self.cache is None or sem is None:
            return None
        messages = self.span.request.get("messages") or []
        if len(messages) > sem.semantic_max_messages or any(m.get("role") == "tool" for m in messages):
            return None  # long or tool-driven conversations: exact matches only
        return prompt_text(messages)

    def lookup(self, vector: list[float] | None = None) -> Any:
        """The cached answer in the form the caller expects, or None on a miss."""
        if self.cache is None:
            return None
        base_url = self.base_url()
        self.key = request_key(self.span.request, base_url)
        try:
            completion = self.cache.get(self.key)
        except Exception as e:  # a damaged entry is a miss
            _cache_failed(e)
            completion = None
        similarity = None
        if completion is None and vector is not None:
            self.vector = vector
            best = max(((cosine(vector, v), k) for v, k in self.cache.semantic_candidates(params_key(self.span.request, base_url))),
                       default=None)
            if best is not None and best[0] >= _settings.semantic.threshold:
                completion = self.cache.get(best[1])
                similarity = best[0]
        if completion is None:
            return None
        span = self.span
        span.cache_hit = "semantic" if similarity is not None else "exact"
        if similarity is not None:
            span.metadata["similarity"] = round(similarity, 4)
        _apply_completion(span, completion, self.own)
        span.metadata["latency_ms"] = round((time.perf_counter() - self.t0) * 1000, 3)
        if self.stream:
            span.streamed = True
            span.first_token_us = now_us()
            chunks = completion_to_chunks(completion, with_usage=not self.hide_usage)
            result: Any = _AsyncReplay(chunks) if self.is_async else _Replay(chunks)
        elif self.raw:
            result = _raw_response(self.client, completion, self.span.request)
        else:
            from openai.types.chat import ChatCompletion

            result = ChatCompletion.model_validate(completion)
        if self.own and _recorder is not None:
            _recorder.end_span(span)
        return result

    def store(self, completion: dict[str, Any]) -> None:
        if self.cache is None or self.key is None:
            return
        redactor = _recorder.redactor if _recorder is not None else None
        if redactor is not None:  # a reply that echoes a key must not put it on disk
            completion = json.loads(redactor.text(json.dumps(completion)))
        try:
            self.cache.set(self.key, completion)
            if self.vector is not None:
                self.cache.semantic_add(params_key(self.span.request, self.base_url()), self.vector, self.key)
        except Exception as e:  # a full or broken cache must not break the call
            _cache_failed(e)

    # -- attempts ---------------------------------------------------------------------------------
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
        self.span.metadata.setdefault("http_errors", []).append(f"{type(error).__name__}: {error}"[:500])
        if self.own and _recorder is not None:
            _recorder.end_span(self.span, error=error)

    def done(self, result: Any) -> Any:
        self._note_attempts()
        self.span.metadata["latency_ms"] = round((time.perf_counter() - self.t0) * 1000, 3)
        if self.stream:
            asm = _Assembler(self.span, self.own, self.hide_usage, on_complete=self.store)
            if hasattr(result, "__aiter__"):
                return _AsyncStreamProxy(result, asm)
            if hasattr(result, "__iter__") and not hasattr(result, "parse"):
                return _StreamProxy(result, asm)
            return result
        parsed = result.parse() if type(result).__name__ == "LegacyAPIResponse" else result
        data = _as_dict(parsed)
        _apply_completion(self.span, data, self.own)
        if data.get("choices"):
            self.store(data)
        if self.own and _recorder is not None:
            _recorder.end_span(self.span)
        return result

    is_async = False


def _wrap_sync(orig: Any) -> Any:
    @functools.wraps(orig)
    def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _recorder is None or args:
            return orig(self, *args, **kwargs)
        try:
            call = _Call(self._client, kwargs)
            text = call.semantic_text()
            vector = None
            if text is not None:
                try:
                    vector = _embedder(self._client, _settings.semantic.embedding_model).embed_query(text)
                except Exception as e:
                    _cache_failed(e)
            hit = call.lookup(vector)
        except Exception:  # recording trouble: make the call untraced rather than fail it
            return orig(self, *args, **kwargs)
        if hit is not None:
            return hit

        def attempt() -> Any:
            call.before()
            try:
                return orig(self, **call.kwargs)
            except BaseException as e:
                call.attempt_failed(e)
                raise

        try:
            if _settings.retry is not None:
                from llmtrace.capture.retry import make_retrying

                result = make_retrying(_settings.retry, call.on_sleep, is_async=False)(attempt)
            else:
                result = attempt()
        except BaseException as e:
            call.failed(e)
            raise
        return call.done(result)

    create.__llmtrace_wrapped__ = True  # type: ignore[attr-defined]
    return create


def _wrap_async(orig: Any) -> Any:
    @functools.wraps(orig)
    async def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _recorder is None or args:
            return await orig(self, *args, **kwargs)
        try:
            call = _Call(self._client, kwargs)
            call.is_async = True
            text = call.semantic_text()
            vector = None
            if text is not None:
                try:
                    vector = await _embedder(self._client, _settings.semantic.embedding_model).aembed_query(text)
                except Exception as e:
                    _cache_failed(e)
            hit = call.lookup(vector)
        except Exception:
            return await orig(self, *args, **kwargs)
        if hit is not None:
            return hit

        async def attempt() -> Any:
            call.before()
            try:
                return await orig(self, **call.kwargs)
            except BaseException as e:
                call.attempt_failed(e)
                raise

        try:
            if _settings.retry is not None:
                from llmtrace.capture.retry import make_retrying

                result = await make_retrying(_settings.retry, call.on_sleep, is_async=True)(attempt)
            else:
                result = await attempt()
        except BaseException as e:
            call.failed(e)
            raise
        return call.done(result)

    create.__llmtrace_wrapped__ = True  # type: ignore[attr-defined]
    return create


def patch_openai() -> bool:
    try:
        from openai.resources.chat.completions import completions as mod
    except ImportError:
        return False
    if not getattr(mod.Completions.create, "__llmtrace_wrapped__", False):
        mod.Completions.create = _wrap_sync(mod.Completions.create)
        mod.AsyncCompletions.create = _wrap_async(mod.AsyncCompletions.create)
    return True
