"""`llmtrace run --offline`: a call the response cache cannot answer fails at its call site, unsent.

The error says why (no answer recorded for this request, or fewer answers than this run asks for it)
and shows the nearest request recorded in the trace store with a diff of the two (the diff `llmtrace
replay` shows at a divergence), so the change that made the miss can be seen without the network.
"""

from __future__ import annotations

import difflib
import json
import sqlite3
from typing import Any

from llmtrace.errors import NoRecordedAnswer

_RECENT = 500  # recorded calls compared, newest first


def refusal(call: Any, n: int) -> NoRecordedAnswer:
    name = call.endpoint.name
    head = f"llmtrace --offline: no cached answer for this {name} request; nothing was sent"
    if n > 0:
        head += (f" (this is its ask number {n + 1} in this run, and the cache holds answers for the first {n} at most: "
                 "a run that asks it more often must record them live)")
        return NoRecordedAnswer(head)
    nearest = _nearest(call.endpoint.kind, call.body)
    if nearest is None:
        return NoRecordedAnswer(head + "\n  (no recorded request to compare with in the trace store)")
    if nearest == call.body:  # the cache keys an answer by the API's base URL too
        return NoRecordedAnswer(head + f"\n  the same request was recorded, for another URL than {call.base_url()} (was"
                                " the provider's base URL, e.g. OPENAI_BASE_URL, another when it was recorded?)")
    from llmtrace.capture.replay import request_diff

    lines = [f"  {line}" for line in request_diff(nearest, call.body, name)]
    return NoRecordedAnswer("\n".join([head, "  nearest recorded request, - recorded, + sent:", *lines]))


def _shape(body: dict[str, Any]) -> tuple[bool, bool]:
    return "messages" in body, "input" in body


def _nearest(kind: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """The recorded request (of the newest calls in the store) closest to `body` as text."""
    from llmtrace.home import store_path

    try:
        db = sqlite3.connect(f"file:{store_path()}?mode=ro", uri=True, timeout=5)
        try:
            rows = db.execute(
                "SELECT p.request FROM spans s JOIN payloads p ON p.span_id = s.id WHERE s.kind = ? AND p.request IS NOT NULL"
                " ORDER BY s.start_us DESC LIMIT ?", (kind, _RECENT)).fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        return None
    sent = json.dumps(body, sort_keys=True)
    best, score = None, -1.0
    for (text,) in rows:
        try:
            request = json.loads(text)
        except ValueError:
            continue
        if not isinstance(request, dict) or _shape(request) != _shape(body):
            continue
        ratio = difflib.SequenceMatcher(None, json.dumps(request, sort_keys=True), sent).quick_ratio()
        if ratio > score:
            best, score = request, ratio
    return best
