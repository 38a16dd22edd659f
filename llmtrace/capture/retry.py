"""Retry policy for provider calls: llmtrace's budget and patience, and how a failed attempt is described.

The SDK's own retry loop makes the attempts (call.py `send_plan`): which answers are retried and how
long to wait are the SDK's rules; llmtrace sets the budget (a larger default), scales the SDK's backoff
to its first wait and caps the waits of one call. Each failed attempt is written into the LLM span
(attempt number, error, status, the SDK's decision, wait).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

RETRY_STATUSES = {408, 409, 429}


@dataclass
class RetryPolicy:
    """How often and how patiently a failed LLM call is tried again."""

    retries: int = 4  # after the first attempt: 5 attempts in all
    base_delay: float = 0.5  # the first backoff wait; the SDK's own is 0.5 s
    max_delay: float = 20.0  # kept for callers that set it; a wait is the SDK's (backoff at most 8 s, retry-after as asked)
    max_total_wait: float = 60.0  # all waits of one call

    @classmethod
    def from_env(cls, retries: int) -> "RetryPolicy":
        p = cls(retries=retries)
        try:  # for tests and impatient demos; documented in the README
            p.base_delay = float(os.environ.get("LLMTRACE_RETRY_BASE_DELAY", p.base_delay))
            p.max_total_wait = float(os.environ.get("LLMTRACE_RETRY_MAX_WAIT", p.max_total_wait))
        except ValueError:
            pass
        return p


def status_of(error: BaseException) -> int | None:
    status = getattr(error, "status_code", None)
    return status if isinstance(status, int) else None


def error_code(error: BaseException) -> str | None:
    code = getattr(error, "code", None)
    if isinstance(code, str):
        return code
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("code"), str):
            return inner["code"]
    return None


def is_retryable(error: BaseException) -> bool:
    """Whether the SDK's retry rule would try this failure again, had it retries left: connection
    errors and timeouts; statuses 408, 409, 429 and 5xx, unless the server's `x-should-retry` says
    otherwise or its `retry-after` is longer than the SDK waits. (The SDK makes the decision while it
    retries; this is for describing an attempt, and never logs.)"""
    import openai

    if isinstance(error, openai.APIConnectionError):  # includes APITimeoutError
        return True
    if not isinstance(error, openai.APIStatusError):
        return False
    return _retry_by_rule(error.response, error.status_code)


def _retry_by_rule(response: Any, status: int) -> bool:
    headers = getattr(response, "headers", None) or {}
    asked = retry_after(headers)
    if asked is not None and asked > _max_retry_after():
        return False
    said = headers.get("x-should-retry")
    if said in ("true", "false"):
        return said == "true"
    return status in RETRY_STATUSES or status >= 500


def _max_retry_after() -> float:
    import sys

    constants = sys.modules.get("openai._constants")
    return float(getattr(constants, "MAX_RETRY_AFTER_DELAY", 60))


def retry_after(headers: Any) -> float | None:
    """Seconds the server asked to wait (retry-after-ms, then retry-after in seconds), if it said."""
    try:
        if headers.get("retry-after-ms") is not None:
            return float(headers["retry-after-ms"]) / 1000
        if headers.get("retry-after") is not None:
            return float(headers["retry-after"])
    except (TypeError, ValueError):
        return None
    return None


def describe(error: BaseException) -> dict[str, Any]:
    return {"error": f"{type(error).__name__}: {error}"[:300], "status": status_of(error), "retryable": is_retryable(error)}


def describe_response(client: Any, response: Any, retry: bool) -> dict[str, Any]:
    """A failed attempt the SDK answered with `retry` (its own decision), as the error it stands for.
    The body goes into the text only when the SDK has already read it: reading it here could wait
    on a server the SDK would simply have hung up on."""
    status = response.status_code
    if getattr(response, "_content", None) is not None:
        try:
            error = client._make_status_error_from_response(response)
            return {"error": f"{type(error).__name__}: {error}"[:300], "status": status, "retryable": retry}
        except Exception:
            pass
    return {"error": f"HTTP {status}", "status": status, "retryable": retry}


def describe_unanswered(error: BaseException | None) -> dict[str, Any]:
    """A failed attempt that got no answer (connection trouble, timeout), as the SDK names it when it
    gives up: APITimeoutError or APIConnectionError."""
    timed_out = error is not None and "timeout" in type(error).__name__.lower()
    name = "APITimeoutError: Request timed out." if timed_out else "APIConnectionError: Connection error."
    if error is not None and not timed_out:
        name += f" ({type(error).__name__}: {error})"
    return {"error": name[:300], "status": None, "retryable": True}
