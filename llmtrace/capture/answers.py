"""A recorded answer handed back to the SDK as the HTTP response it would have received.

The cache and `llmtrace replay` keep an answer as its status, headers and body bytes (a stream as its
server-sent events). Here it becomes an httpx response, hanging on a request for the call's URL, so the
SDK's own `_process_response` parses it exactly as it parsed the live answer, stream events included.
"""

from __future__ import annotations

import json
import sys
from typing import Any

_requests: dict[tuple[Any, ...], Any] = {}


def as_response(client: Any, options: Any, base: str, entry: dict[str, Any], stream: bool) -> Any:
    """`entry` (status, headers, parts, sse) as the httpx response the SDK would have received."""
    request = _request_for(client, options, base)
    httpx = sys.modules[type(request).__module__.split(".")[0]]
    headers = [*entry["headers"], ["x-llmtrace-cache", "hit"]]
    if entry["sse"] or (stream and entry["status"] < 400):  # an error answer is read whole
        _, _, replay = stream_classes(httpx)
        return httpx.Response(entry["status"], headers=headers, stream=replay(list(entry["parts"])), request=request)
    return httpx.Response(entry["status"], headers=headers, content=b"".join(entry["parts"]), request=request)


def _request_for(client: Any, options: Any, base: str) -> Any:
    """The request a replayed answer hangs on: a plain httpx Request for the call's URL and per-call
    headers, made once for each. The SDK's own _build_request, with every header and the body, would
    add ~0.5 ms to each cache hit (a third of what a hit saves) for a request that is never sent."""
    method = str(getattr(options, "method", "post")).upper()
    url = base + "/" + str(options.url).lstrip("/")
    # The per-call headers go along: the SDK reads X-Stainless-Raw-Response back from the request to
    # decide whether the caller asked for the raw response (LangChain does).
    given = getattr(options, "headers", None)
    headers = tuple(sorted((k, v) for k, v in given.items() if isinstance(v, str))) if isinstance(given, dict) else ()
    key = (type(getattr(client, "_client", None)), method, url, headers)
    request = _requests.get(key)
    if request is None:
        httpx = _httpx_of(client)
        if httpx is not None:
            request = httpx.Request(method, url, headers=list(headers))
        else:  # an SDK shaped otherwise: its own request builder
            try:
                request = client._build_request(options)
            except TypeError:  # pragma: no cover - older signature
                request = client._build_request(options, retries_taken=0)
        if len(_requests) < 256:
            _requests[key] = request
    return request


def _httpx_of(client: Any) -> Any:
    """The httpx module (by whatever name it is installed) the SDK client's HTTP client comes from: the
    first package in its class's ancestry that has both Request and Response (a wrapper class, such as
    langchain-openai's, comes first and has neither)."""
    for k in type(getattr(client, "_client", None)).__mro__:
        module = sys.modules.get(k.__module__.split(".")[0])
        if isinstance(getattr(module, "Request", None), type) and isinstance(getattr(module, "Response", None), type):
            return module
    return None


def stream_classes(httpx: Any) -> tuple[type, type, type]:
    from llmtrace.capture.streams import stream_classes as classes

    return classes(httpx.__name__)


def sse_events(body: bytes) -> list[bytes]:
    from llmtrace.capture.streams import split_events

    events, rest = split_events(body)
    return events + ([rest] if rest.strip() else [])


def event_json(event: bytes) -> Any:
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
