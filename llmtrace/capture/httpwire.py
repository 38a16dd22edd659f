"""Wire capture below provider SDKs that talk plain httpx (the `ollama` client, google-genai): `send()` of
httpx's (and httpx2's) Client and AsyncClient, wrapped, for the requests an adapter in providers.py knows.

Each such request goes through the same pipeline as an openai call (call.py): the LangChain run's span
claims it (or a span of its own), the record/replay cache and `llmtrace replay` answer it with the recorded
HTTP response, budgets admit it, the response body is teed into the span (usage, model, tool calls,
stream pieces) and stored for the next run. Every other request, and every request an openai or anthropic
call sends (already captured at its `request()`), passes through untouched.

Retries stay the SDK's own: nothing is retried here (the `ollama` client retries nothing; google-genai
retries through its tenacity loop when the script configured it, langchain-google-genai's `max_retries`).
Each attempt of such a loop is one `send()`: an attempt that follows a failed one for the same LangChain
run with the same request continues that call — the same span, cache slot and budget admission — and is
counted in its attempts and attempt log.
"""

from __future__ import annotations

import functools
import json
import sys
from contextvars import ContextVar
from typing import Any

from llmtrace.capture import context, lookup, providers
from llmtrace.capture.call import Call
from llmtrace.capture.endpoints import Endpoint

# The last call sent in this context: the SDK's next attempt, if it retries, continues it.
_last: ContextVar["HttpCall | None"] = ContextVar("llmtrace_last_http_call", default=None)


class HttpCall(Call):
    """A Call whose request is an httpx.Request the SDK built, and whose answer goes back as an httpx.Response."""

    def __init__(self, client: Any, request: Any, body: dict[str, Any], endpoint: Endpoint, stream: bool,
                 recorder: Any, settings: Any):
        self.recorder, self.settings = recorder, settings
        self.client, self.endpoint, self.stream, self.request = client, endpoint, stream, request
        if recorder.redactor is not None:  # the key the SDK sends in a header; never on disk
            for name in ("x-goog-api-key", "authorization"):
                value = request.headers.get(name)
                if value:
                    recorder.redactor.add_secret(value.split(" ", 1)[-1] if name == "authorization" else value)
        self.hide_usage = False
        self.options = None
        self.body = body
        url = request.url
        model = body.get("model") or (url.path.rsplit("/", 1)[-1].split(":", 1)[0] if ":" in url.path else None)
        self._open_span(endpoint.provider, model)
        origin = f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}"
        self._base = origin
        # The cache key's URL: the path names the model (Gemini) and alt=sse the stream; a key in the query is left out.
        query = "?alt=sse" if url.params.get("alt") == "sse" else ""
        self._url = settings.url_aliases.get(origin, origin) + url.path + query

    def replay_response(self, entry: dict[str, Any], final: bool = False) -> Any:
        httpx = sys.modules[type(self.request).__module__.split(".")[0]]
        if entry["sse"] or (self.stream and entry["status"] < 400):
            _, _, replay = lookup_stream_classes(httpx.__name__)
            response = httpx.Response(entry["status"], headers=entry["headers"], stream=replay(list(entry["parts"])),
                                      request=self.request)
        else:
            response = httpx.Response(entry["status"], headers=entry["headers"], content=b"".join(entry["parts"]),
                                      request=self.request)
        return response

    def on_response(self, response: Any) -> None:
        self.lines = response.headers.get("content-type", "").startswith("application/x-ndjson")
        super().on_response(response)

    def continues(self, request: Any, body: dict[str, Any]) -> bool:
        """Whether `request` is the SDK's next attempt of this call: the same request after a failed one,
        for a LangChain run still open."""
        failed = self.status is None or self.status >= 400
        return (failed and not self.own and self.body == body and str(request.url) == str(self.request.url)
                and self.recorder.get_open(self.span.id) is not None)

    def again(self, client: Any, request: Any, stream: bool) -> None:
        """The next attempt: the failed one is logged; the span, cache slot and admission carry on."""
        if not self._logged(self.attempts):
            self.log.append({"attempt": self.attempts, "status": self.status, "retry": True})
        self.client, self.request, self.stream = client, request, stream
        self.status, self.body_finished, self.sse, self.lines, self.returned_ok = None, False, False, False, False


def lookup_stream_classes(name: str) -> Any:
    from llmtrace.capture.streams import stream_classes

    return stream_classes(name)


def _body(request: Any) -> dict[str, Any] | None:
    try:
        data = json.loads(request.content)
    except Exception:  # a streamed upload, or not JSON: not a call an adapter reads
        return None
    return data if isinstance(data, dict) else None


def _begin(client: Any, request: Any, stream: bool) -> tuple[HttpCall, Any, bool] | None:
    """(the call, its recorded answer or None, whether it is a retry of the last one), or None to leave it."""
    recorder = context.recorder
    if recorder is None or context.internal.get() or context.active.get() is not None:
        return None
    endpoint = _endpoint_for(request.method, request.url.path)
    if endpoint is None:
        return None
    body = _body(request)
    if body is None:
        return None
    last = _last.get()
    if last is not None and last.continues(request, body):
        last.again(client, request, stream)
        return last, last.hit, True
    call = HttpCall(client, request, body, endpoint, stream, recorder, context.settings)
    _last.set(call)
    return call, lookup.find(call), False


_endpoint_for = functools.lru_cache(maxsize=256)(providers.for_request)


def _finish_send(call: HttpCall, response: Any) -> None:
    try:
        call.on_response(response)
    except Exception:  # recording trouble never reaches the caller
        pass


def _wrap_send_sync(orig: Any) -> Any:
    @functools.wraps(orig)
    def send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            begun = _begin(self, request, bool(kwargs.get("stream")))
        except Exception:  # recording trouble: the request goes untraced rather than fail
            begun = None
        if begun is None:
            return orig(self, request, *args, **kwargs)
        call, hit, retry = begun
        token = context.active.set(call)
        try:
            if not retry:
                call.admit(hit)
            call.attempts += 1
            if hit is not None:
                response = call.replay_response(hit, final=True)
                if not kwargs.get("stream"):
                    response.read()
            else:
                call.sending = True
                response = orig(self, request, *args, **kwargs)
            _finish_send(call, response)
        except BaseException as e:
            call.failed(e)
            raise
        finally:
            call.sending = False
            context.active.reset(token)
        call.returned()
        return response

    send.__llmtrace_wrapped__ = True  # type: ignore[attr-defined]
    return send


def _wrap_send_async(orig: Any) -> Any:
    @functools.wraps(orig)
    async def send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            begun = _begin(self, request, bool(kwargs.get("stream")))
        except Exception:
            begun = None
        if begun is None:
            return await orig(self, request, *args, **kwargs)
        call, hit, retry = begun
        call.is_async = True
        token = context.active.set(call)
        try:
            if not retry:
                call.admit(hit)
            call.attempts += 1
            if hit is not None:
                response = call.replay_response(hit, final=True)
                if not kwargs.get("stream"):
                    await response.aread()
            else:
                call.sending = True
                response = await orig(self, request, *args, **kwargs)
            _finish_send(call, response)
        except BaseException as e:
            call.failed(e)
            raise
        finally:
            call.sending = False
            context.active.reset(token)
        call.returned()
        return response

    send.__llmtrace_wrapped__ = True  # type: ignore[attr-defined]
    return send


def patch_httpx(client_module: Any) -> None:
    """Wrap send() of an httpx-like package's Client and AsyncClient (`httpx._client`, `httpx2._client`)."""
    sync, async_ = getattr(client_module, "Client", None), getattr(client_module, "AsyncClient", None)
    if sync is None or async_ is None or getattr(sync.send, "__llmtrace_wrapped__", False):
        return
    sync.send = _wrap_send_sync(sync.send)
    async_.send = _wrap_send_async(async_.send)
