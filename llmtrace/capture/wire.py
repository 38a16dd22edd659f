"""Where an SDK call is intercepted: the openai and anthropic clients' `request()`, wrapped.

Every SDK call (chat.completions create/parse/stream, responses create/parse/stream, embeddings, raw
and streaming-response variants, sync and async; anthropic messages) goes through the client's
`request()` once per logical call; that is where llmtrace sits. The pipeline each call goes through:

- Look up (lookup.py): the response cache is record/replay (see cache.py). A replayed answer is handed
  to the SDK's own `_process_response` as an HTTP response (answers.py), so the caller gets exactly the
  object (and the stream events) the live answer gave.
- Send with retries (call.py, retry.py): the SDK's own retry loop makes every attempt, so the retry
  protocol (x-should-retry, retry-after, x-stainless-retry-count, retries_taken, its log lines, its
  backoff) is the SDK's. llmtrace's policy sets the budget on the per-request options (a larger default;
  a client built with an explicit `max_retries` keeps that budget), put back after, and hears each
  attempt through hooks on the SDK's retry methods.
- Record: the body is teed below the SDK's parser (streams.py), so usage is recorded even when the SDK
  then fails to parse it. One HTTP exchange is one span: a LangChain LLM span opened just before claims
  the call (context.py); a bare SDK call gets a span of its own, parented to the current LangChain run.
What the endpoint is only matters to the small adapter `endpoints.for_path()` returns.
"""

from __future__ import annotations

import functools
from typing import Any

from llmtrace.capture import context, endpoints, lookup
from llmtrace.capture.call import Call, sdk_of

_embedders: dict[tuple[str, str], Any] = {}


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



_endpoint_for = functools.lru_cache(maxsize=1024)(endpoints.for_path)  # (sdk, method, url) → its adapter, or None


def _begin(client: Any, options: Any, stream: bool) -> "Call | None":
    """The call to trace, or None when this request is not one llmtrace traces."""
    recorder = context.recorder
    if recorder is None or context.internal.get() or context.active.get() is not None:
        return None
    endpoint = _endpoint_for(sdk_of(client), str(getattr(options, "method", "")), str(getattr(options, "url", "")))
    if endpoint is None:
        return None
    return Call(client, options, endpoint, stream, recorder, context.settings)


def _wrap_request_sync(orig: Any) -> Any:
    @functools.wraps(orig)
    def request(self: Any, cast_to: Any, options: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            call = None if args else _begin(self, options, bool(kwargs.get("stream")))
            if call is not None:
                text = lookup.semantic_text(call)
                vector = None
                if text is not None:
                    token = context.internal.set(True)
                    try:
                        vector = _embedder(self, call.settings.semantic.embedding_model).embed_query(text)
                    except Exception as e:
                        lookup.cache_failed(e)
                    finally:
                        context.internal.reset(token)
                hit = lookup.find(call, vector)
        except Exception:  # recording trouble: make the call untraced rather than fail it
            call = None
        if call is None:
            return orig(self, cast_to, options, *args, **kwargs)
        token = context.active.set(call)
        try:
            call.admit(hit)
            if hit is not None:
                result = self._process_response(cast_to=cast_to, options=call.options, response=call.replayed(self, hit),
                                                stream=bool(kwargs.get("stream")), stream_cls=kwargs.get("stream_cls"),
                                                **call.retries_taken_arg(type(self)._process_response))
            else:
                call.sending = True
                result = orig(self, cast_to, call.send_plan(), **kwargs)
        except BaseException as e:
            call.failed(e)
            raise
        finally:
            call.sending = False
            context.active.reset(token)
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
                text = lookup.semantic_text(call)
                vector = None
                if text is not None:
                    token = context.internal.set(True)
                    try:
                        vector = await _embedder(self, call.settings.semantic.embedding_model).aembed_query(text)
                    except Exception as e:
                        lookup.cache_failed(e)
                    finally:
                        context.internal.reset(token)
                hit = lookup.find(call, vector)
        except Exception:
            call = None
        if call is None:
            return await orig(self, cast_to, options, *args, **kwargs)
        token = context.active.set(call)
        try:
            call.admit(hit)
            if hit is not None:
                result = await self._process_response(
                    cast_to=cast_to, options=call.options, response=call.replayed(self, hit),
                    stream=bool(kwargs.get("stream")), stream_cls=kwargs.get("stream_cls"),
                    **call.retries_taken_arg(type(self)._process_response),
                )
            else:
                call.sending = True
                result = await orig(self, cast_to, call.send_plan(), **kwargs)
        except BaseException as e:
            call.failed(e)
            raise
        finally:
            call.sending = False
            context.active.reset(token)
            call.restore_options()
        call.returned()
        return result

    request.__llmtrace_wrapped__ = True  # type: ignore[attr-defined]
    return request


def _seen(response: Any) -> None:
    call = context.active.get()
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


def _sending(client: Any) -> "Call | None":
    """The call this client's request() is sending in this context, if llmtrace traces it."""
    call = context.active.get()
    return call if call is not None and call.sending and call.client is client else None


# The SDK's retry loop, heard at three methods both the oldest supported and the newest openai (and
# anthropic) call once per attempt: building the request, deciding on a failed answer, computing the
# wait. A script (or a test suite) that patches one of them replaces the hook with its own function:
# then its function rules, and llmtrace notes less about the attempts.
def _wrap_build_request(orig: Any) -> Any:
    @functools.wraps(orig)
    def _build_request(self: Any, options: Any, *args: Any, **kwargs: Any) -> Any:
        call = _sending(self)
        if call is not None:
            try:
                call.attempt_started(int(kwargs.get("retries_taken", 0)))
            except Exception:  # recording trouble never reaches the caller
                pass
        return orig(self, options, *args, **kwargs)

    _build_request.__llmtrace_wrapped__ = True  # type: ignore[attr-defined]
    return _build_request


def _wrap_should_retry(orig: Any) -> Any:
    @functools.wraps(orig)
    def _should_retry(self: Any, response: Any) -> bool:
        retry = orig(self, response)
        call = _sending(self)
        if call is not None:
            try:
                call.attempt_answered(self, response, bool(retry))
            except Exception:
                pass
        return retry

    _should_retry.__llmtrace_wrapped__ = True  # type: ignore[attr-defined]
    return _should_retry


def _wrap_retry_timeout(orig: Any) -> Any:
    @functools.wraps(orig)
    def _calculate_retry_timeout(self: Any, *args: Any, **kwargs: Any) -> float:
        seconds = orig(self, *args, **kwargs)
        call = _sending(self)
        if call is not None:
            try:
                headers = kwargs["response_headers"] if "response_headers" in kwargs else (args[2] if len(args) > 2 else None)
                seconds = call.retry_wait(self, seconds, headers)
            except Exception:
                pass
        return seconds

    _calculate_retry_timeout.__llmtrace_wrapped__ = True  # type: ignore[attr-defined]
    return _calculate_retry_timeout


_RETRY_HOOKS = {"_build_request": _wrap_build_request, "_should_retry": _wrap_should_retry,
                "_calculate_retry_timeout": _wrap_retry_timeout}


def patch_sdk(base: Any) -> None:
    """Wrap request() and _process_response() of an SDK's `_base_client` module (openai, anthropic:
    both are generated by Stainless and share this structure)."""
    sync, async_ = base.SyncAPIClient, base.AsyncAPIClient
    if not getattr(sync.request, "__llmtrace_wrapped__", False):
        sync.request = _wrap_request_sync(sync.request)
        async_.request = _wrap_request_async(async_.request)
        sync._process_response = _wrap_process_sync(sync._process_response)
        async_._process_response = _wrap_process_async(async_._process_response)
        owner = getattr(base, "BaseClient", None)
        for name, wrap in _RETRY_HOOKS.items():
            method = owner.__dict__.get(name) if owner is not None else None
            if callable(method) and not getattr(method, "__llmtrace_wrapped__", False):
                setattr(owner, name, wrap(method))
