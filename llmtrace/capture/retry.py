"""Retry policy for provider calls: which errors are worth another attempt, and how long to wait.

One layer owns the budget: while llmtrace retries, the openai SDK's own (silent) retries are off.
Each failed attempt is written into the LLM span (attempt number, error, status, wait).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import tenacity

RETRY_STATUSES = {408, 409, 429}
NEVER_CODES = {"insufficient_quota", "context_length_exceeded", "invalid_api_key"}


@dataclass
class RetryPolicy:
    """How often and how patiently a failed LLM call is tried again."""

    retries: int = 4  # after the first attempt: 5 attempts in all
    base_delay: float = 0.5
    max_delay: float = 20.0  # one wait
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
    import openai

    if isinstance(error, openai.APIConnectionError):  # includes APITimeoutError
        return True
    if not isinstance(error, openai.APIStatusError):
        return False
    code = error_code(error)
    if code in NEVER_CODES or "context_length" in str(error).lower() and error.status_code == 400:
        return False
    return error.status_code in RETRY_STATUSES or error.status_code >= 500


def retry_after(error: BaseException) -> float | None:
    """Seconds the server asked us to wait (retry-after-ms, then retry-after), if it said."""
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
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


def make_retrying(policy: RetryPolicy, on_sleep: Callable[[float], None], *, is_async: bool) -> Any:
    """A tenacity Retrying (or AsyncRetrying); `on_sleep(seconds)` hears each wait before it happens."""
    import tenacity  # here, not at the top: a run whose calls never fail does not pay for importing it

    def wait(state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        asked = retry_after(error) if error else None
        if asked is not None:
            delay = min(asked, policy.max_delay)
        else:  # exponential backoff with full jitter on the upper half
            ceiling = min(policy.max_delay, policy.base_delay * 2 ** (state.attempt_number - 1))
            delay = ceiling / 2 + random.uniform(0, ceiling / 2)
        return max(0.0, delay)

    def stop(state: tenacity.RetryCallState) -> bool:
        return (
            state.attempt_number > policy.retries
            or state.idle_for + state.upcoming_sleep > policy.max_total_wait
        )

    def before_sleep(state: tenacity.RetryCallState) -> None:
        on_sleep(state.upcoming_sleep)

    cls = tenacity.AsyncRetrying if is_async else tenacity.Retrying
    return cls(
        retry=tenacity.retry_if_exception(is_retryable),
        wait=wait,
        stop=stop,
        before_sleep=before_sleep,
        reraise=True,
    )
