"""A recorded answer handed back to the SDK as the HTTP response it would have received.

The cache and `llmtrace replay` keep an answer as its status, headers and body bytes (a stream as its
server-sent events). Here it becomes an httpx response, hanging on the request the SDK builds for the
call, so the SDK's own `_process_response` parses it exactly as it parsed the live answer, stream events
included, and the caller sees the recorded answer's headers and nothing else.
"""

from __future__ import annotations

import json
import sys
from typing import Any

def as_response(client: Any, options: Any, entry: dict[str, Any], stream: bool, retries_taken: int = 0) -> Any:
    """`entry` (status, headers, parts, sse) as the httpx response the SDK would have received: the
    recorded headers, nothing added, on the request the SDK itself would have sent for this attempt
    (its x-stainless-* headers and retry count included, so the caller's `response.http_request` is
    what a live answer carries)."""
    request = _request_for(client, options, retries_taken)
    httpx = sys.modules[type(request).__module__.split(".")[0]]
    headers = entry["headers"]
    if entry["sse"] or (stream and entry["status"] < 400):  # an error answer is read whole
        _, _, replay = stream_classes(httpx)
        return httpx.Response(entry["status"], headers=headers, stream=replay(list(entry["parts"])), request=request)
    return httpx.Response(entry["status"], headers=headers, content=b"".join(entry["parts"]), request=request)


def _request_for(client: Any, options: Any, retries_taken: int) -> Any:
    """The request a replayed answer hangs on, built by the SDK's own _build_request (never sent)."""
    try:
        return client._build_request(options, retries_taken=retries_taken)
    except TypeError:  # an SDK whose builder takes no retry count
        return client._build_request(options)


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
