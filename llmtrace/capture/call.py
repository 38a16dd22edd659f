"""One logical SDK call as it goes through the pipeline: its span, its cache slot, its attempts, its body.

`wire.py` makes a Call around each SDK `request()` it traces and drives it: look up (lookup.py), admit
(budget, replay), send with retries or hand back the recorded answer (answers.py), tee the response body
(streams.py) into the span, store the answer, end the span.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from typing import Any

from llmtrace.capture import answers, endpoints, lookup
from llmtrace.capture.context import claim, langchain_parent
from llmtrace.capture.endpoints import Endpoint
from llmtrace.capture.serialize import parse_json_maybe
from llmtrace.clock import now_us

_DROP_HEADERS = {"content-encoding", "content-length", "transfer-encoding", "connection", "keep-alive", "set-cookie"}


@functools.lru_cache(maxsize=256)
def _sdk_class(cls: type) -> str:
    return cls.__module__.split(".", 1)[0]


def sdk_of(client: Any) -> str:
    """Which Stainless-built SDK the client belongs to: "openai" or "anthropic"."""
    return _sdk_class(type(client))


def _provider(client: Any) -> str:
    if sdk_of(client) == "anthropic":
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


# Hosts known to accept `stream_options.include_usage`. Other OpenAI-compatible servers may reject a field
# they do not know (LangChain leaves stream usage off for a custom base URL for this reason): their body
# goes as the script built it. LLMTRACE_USAGE_HOSTS (host or host:port, comma-separated) adds gateways
# the user knows to accept it.
_USAGE_HOSTS = frozenset({"api.openai.com"})


@functools.lru_cache(maxsize=64)
def _netloc(url: str) -> tuple[str, str]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return (parts.hostname or "").lower(), parts.netloc.lower()


@functools.lru_cache(maxsize=8)
def _listed(value: str) -> frozenset[str]:
    return frozenset(h.strip().lower() for h in value.split(",") if h.strip())


def _takes_usage(client: Any, settings: Any) -> bool:
    """Whether llmtrace may ask this endpoint for a streamed call's usage: OpenAI's own API, the
    project's mock server of this run (`--mock`, whose URLs the settings alias), or a listed host."""
    if sdk_of(client) != "openai":
        return False
    base = str(getattr(client, "base_url", "") or "").rstrip("/")
    host, netloc = _netloc(base)
    if host in _USAGE_HOSTS or base in settings.url_aliases:
        return True
    listed = _listed(os.environ.get("LLMTRACE_USAGE_HOSTS", ""))
    return host in listed or netloc in listed


@functools.lru_cache(maxsize=16)
def _takes_retries_taken(process: Any) -> bool:
    import inspect

    try:
        return "retries_taken" in inspect.signature(process).parameters
    except (TypeError, ValueError):
        return False


def _sdk_default_retries(sdk: str) -> int:
    constants = sys.modules.get(f"{sdk}._constants")
    return getattr(constants, "DEFAULT_MAX_RETRIES", 2)


class Call:
    """One logical SDK call: its span, its cache slot, its attempts, and its response body."""

    is_async = False
    lines = False  # the answer is a stream of JSON lines (set by httpwire.HttpCall)

    def __init__(self, client: Any, options: Any, endpoint: Endpoint, stream: bool, recorder: Any,
                 settings: Any):
        rec = self.recorder = recorder
        self.settings = settings
        if rec.redactor is not None:
            rec.redactor.add_secret(getattr(client, "api_key", None))
        self.client, self.endpoint, self.stream = client, endpoint, stream
        # Unset parameters (NotGiven / Omit sentinels) are not sent: the anthropic SDK leaves them in json_data.
        body = {k: v for k, v in options.json_data.items() if _given(v)} if isinstance(options.json_data, dict) else {}
        extra = getattr(options, "extra_json", None)
        if isinstance(extra, dict):
            body.update(extra)
        self.hide_usage = False
        if stream and endpoint is endpoints.CHAT and isinstance(options.json_data, dict) and _takes_usage(client, settings):
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
        self._open_span(_provider(client), self.body.get("model"))

    def _open_span(self, provider: str, model: Any) -> None:
        """The call's span (the LangChain run's, when one is waiting for it) and the per-call state."""
        endpoint, rec = self.endpoint, self.recorder
        span = claim() if endpoint.claims_llm_span else None
        self.own = span is None
        if span is None:
            span = rec.start_span(
                kind=endpoint.kind, name=endpoint.name, parent_id=langchain_parent(),
                inputs=endpoint.inputs(self.body), model_requested=model,
            )
        span.provider = span.provider or provider
        span.model_requested = span.model_requested or model
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
        self._sdk_retries: tuple[Any, bool, int] | None = None  # (max_retries, was unset, set) while send_plan's stand
        self.sending = False  # the SDK's request() is sending this call: its attempts are this call's
        self.waited = 0.0  # seconds of retry waits so far
        self.t0 = time.perf_counter()

    # -- cache ------------------------------------------------------------------------------------
    def base_text(self) -> str:
        """The client's base URL as text, without a trailing slash."""
        base = self._base
        if base is None:
            base = self._base = str(self.client.base_url).rstrip("/")
        return base

    def base_url(self) -> str:
        url = self._url
        if url is None:
            base = self.base_text()
            url = self._url = self.settings.url_aliases.get(base, base) + "/" + str(self.options.url).lstrip("/")
        return url

    def replay_response(self, entry: dict[str, Any], final: bool = False) -> Any:
        """A recorded answer as the httpx response the SDK would have received. The `final` answer of a
        call, read whole and not an error, goes into the span here: the SDK takes it as it is, so the
        tee `on_response` puts on a live answer has nothing to do."""
        response = answers.as_response(self.client, self.options, entry, self.stream, len(self.replay_failures))
        if final and entry["status"] < 400 and not (entry["sse"] or self.stream):
            self.status = entry["status"]  # the headers are kept only to store an answer: a hit stores none
            try:
                self.body_done([response.content], None, True)
            except Exception:  # recording trouble never reaches the caller
                pass
        return response

    def admit(self, hit: dict[str, Any] | None) -> None:
        """Before anything is sent: a replay divergence or a spent budget raises here, at the call site."""
        if self.refusal is not None:
            raise self.refusal
        if self.settings.budget is not None:
            self.settings.budget.admit_call(self.span, not self.own, hit is not None)

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

    def retries_taken_arg(self, process: Any) -> dict[str, int]:
        """`retries_taken` for the SDK's _process_response of a replayed answer (the recorded failed
        attempts before it), where that SDK version takes it."""
        return {"retries_taken": len(self.replay_failures)} if _takes_retries_taken(process) else {}

    # -- the response body (a Sink for the tee) ---------------------------------------------------
    def on_response(self, response: Any) -> None:
        """The SDK is about to parse `response` (live or replayed): tee its body into the span."""
        self.status = response.status_code
        headers = response.headers
        if self.key is not None:  # an answer for the cache: its headers are kept with it
            self.headers = [[k, v] for k, v in headers.items() if k.lower() not in _DROP_HEADERS]
        sse = self.sse = headers.get("content-type", "").startswith("text/event-stream")
        encoded = headers.get("content-encoding", "identity").lower() not in ("", "identity")
        if hasattr(response, "_content"):  # already read (a non-streamed send)
            self.body_done([response.content], None, True)
            return
        if encoded:  # compressed bytes under the decoder: record them whole, as they came
            if self.key is not None:
                self.headers = [[k, v] for k, v in headers.items() if k.lower() not in _DROP_HEADERS - {"content-encoding"}]
            sse = self.sse = False
        httpx = sys.modules[type(response).__module__.split(".")[0]]
        tee, atee, _ = answers.stream_classes(httpx)
        response.stream = (atee if self.is_async else tee)(response.stream, self, sse)

    def first_bytes(self) -> None:
        if self.span.first_token_us is None:
            self.span.first_token_us = now_us()

    def hidden(self, event: bytes) -> bool:
        if not self.hide_usage or b'"usage"' not in event:
            return False
        data = answers.event_json(event)
        return isinstance(data, dict) and self.endpoint.hidden_event(data)

    def body_done(self, parts: list[bytes], error: BaseException | None, exhausted: bool) -> None:
        if self.body_finished:
            return
        self.body_finished = True
        span = self.span
        events = None
        if self.sse and len(parts) > 1:  # the tee's parts are the events already (and any unfinished rest)
            events = parts if parts[-1].strip() else parts[:-1]
        body = b"".join(parts) if events is None else b""
        if self.sse and events is None:
            events = answers.sse_events(body)
        complete = exhausted and error is None
        try:
            if events is not None:
                span.streamed = True
                datas = [e for e in (answers.event_json(ev) for ev in events) if isinstance(e, dict)]
                span.metadata["chunks"] = len(datas)  # events as the provider sent them (with time to first: first_token_us)
                self.endpoint.read_events(span, datas, self.own)
                # The SDK stops reading at [DONE] (chat) and may close before the end of a Responses stream.
                complete = complete or any(ev.strip().endswith(b"[DONE]") or b'"response.completed"' in ev
                                           or b'"message_stop"' in ev for ev in events[-2:])
            elif self.lines:  # newline-delimited JSON (Ollama's streams)
                datas = [d for d in map(parse_json_maybe, body.decode("utf-8", "replace").splitlines()) if isinstance(d, dict)]
                span.streamed = True
                span.metadata["chunks"] = len(datas)
                self.endpoint.read_events(span, datas, self.own)
            else:
                data = parse_json_maybe(body.decode("utf-8", "replace"))
                if isinstance(data, dict):
                    self.endpoint.read(span, data, self.own)
        except Exception:  # an odd body must not break the call; the span keeps what it had
            pass
        if complete:
            lookup.store(self, events if events is not None else parts, events is not None)
        if self.own and (self.returned_ok or error is not None):
            self.recorder.end_span(span, error=error)

    # -- attempts ---------------------------------------------------------------------------------
    def retry_budget(self) -> int | None:
        """Retries for this call when llmtrace owns the budget, or None to leave it to the SDK."""
        policy = self.settings.retry
        if policy is None:
            return None
        per_request = getattr(self.options, "max_retries", None)
        if isinstance(per_request, int):
            return per_request
        mine = getattr(self.client, "max_retries", None)
        if isinstance(mine, int) and mine != _sdk_default_retries(sdk_of(self.client)):
            return mine  # the script chose a budget: keep it
        return policy.retries

    def send_plan(self) -> Any:
        """The request options to send with.

        The SDK's own retry loop makes every attempt, so which answers are retried (`x-should-retry`,
        a `retry-after` too long to wait), the `x-stainless-retry-count` each attempt sends, the
        `retries_taken` reported back, the log lines and any backoff the script patched are the SDK's.
        llmtrace only sets the budget on the request's options for the call (`restore_options` puts
        them back), and hears each attempt through the hooks in wire.py. The SDK makes fresh options
        for each request; a copy would cost more than the rest of the call's set-up."""
        budget = self.retry_budget()
        options = self.options
        if budget is not None:
            fields = getattr(options, "__pydantic_fields_set__", None)
            self._sdk_retries = (options.max_retries, fields is not None and "max_retries" not in fields, budget)
            options.max_retries = budget
        return options

    def restore_options(self) -> None:
        """The options' max_retries as they were before `send_plan` (and pydantic's note of it)."""
        saved = self._sdk_retries
        if saved is None:
            return
        self._sdk_retries = None
        options = self.options
        if options.max_retries == saved[2]:  # else someone else changed it since: theirs stays
            options.max_retries = saved[0]
            if saved[1]:
                options.__pydantic_fields_set__.discard("max_retries")

    def attempt_started(self, retries_taken: int) -> None:
        """The SDK builds the request of an attempt (`retries_taken` before it)."""
        if retries_taken > 0 and not self._logged(self.attempts):
            self._note_unanswered(None)
        self.attempts += 1

    def attempt_answered(self, client: Any, response: Any, retry: bool) -> None:
        """The SDK decided whether to retry the failed answer of the current attempt."""
        from llmtrace.capture.retry import describe_response

        if not self._logged(self.attempts):
            self.log.append({"attempt": self.attempts, **describe_response(client, response, retry)})

    def retry_wait(self, client: Any, seconds: float, headers: Any) -> float:
        """The SDK's wait before the next attempt, within llmtrace's policy when llmtrace owns the budget:
        its own backoff scaled to the policy's first wait (LLMTRACE_RETRY_BASE_DELAY; the SDK's 0.5 s by
        default, so unchanged), what the server asked for kept, all waits of the call capped."""
        if not self._logged(self.attempts):
            self._note_unanswered(sys.exc_info()[1])
        policy = self.settings.retry
        if policy is not None and self._sdk_retries is not None:
            parse = getattr(client, "_parse_retry_after_header", None)
            asked = parse(headers) if parse is not None and headers is not None else None
            if asked is None or asked != seconds:
                constants = sys.modules.get(f"{sdk_of(client)}._constants")
                seconds *= policy.base_delay / getattr(constants, "INITIAL_RETRY_DELAY", 0.5)
            seconds = max(0.0, min(seconds, policy.max_total_wait - self.waited))
        self.waited += seconds
        if self.log:
            self.log[-1]["wait_s"] = round(seconds, 3)
        return seconds

    def _logged(self, attempt: int) -> bool:
        return bool(self.log) and self.log[-1]["attempt"] == attempt

    def _note_unanswered(self, error: BaseException | None) -> None:
        from llmtrace.capture.retry import describe_unanswered

        self.log.append({"attempt": self.attempts, **describe_unanswered(error)})

    def before(self) -> None:
        self.attempts += 1

    def attempt_failed(self, error: BaseException) -> None:
        from llmtrace.capture.retry import describe

        self.log.append({"attempt": self.attempts, **describe(error)})

    def _note_attempts(self) -> None:
        if self.settings.retry is not None:
            self.span.attempts = self.attempts
        if self.log:
            self.span.metadata["attempt_log"] = self.log

    def failed(self, error: BaseException) -> None:
        if self.attempts and self.sending:
            from llmtrace.capture.retry import describe

            if self._logged(self.attempts):  # heard before the SDK raised it: the error says more
                self.log[-1]["error"] = describe(error)["error"]
            else:
                self.log.append({"attempt": self.attempts, **describe(error)})
        self._note_attempts()
        if not isinstance(error, (KeyboardInterrupt, SystemExit)):
            self.span.metadata.setdefault("http_errors", []).append(f"{type(error).__name__}: {error}"[:500])
        if self.own:
            self.recorder.end_span(self.span, error=error)

    def returned(self) -> None:
        self._note_attempts()
        self.span.metadata["latency_ms"] = round((time.perf_counter() - self.t0) * 1000, 3)
        self.returned_ok = True
        if self.own and self.body_finished:
            self.recorder.end_span(self.span)
