"""What capture knows of this process and of the code running now: the recorder and settings of the
session, the SDK call under way, and where a call hangs in LangChain's tree of runs.

The callback handler (handler.py) and the SDK pipeline (wire.py, call.py) meet here: an LLM span the
handler opens is expected (`expect_call`) and claimed by the HTTP call that follows in the same context.
"""

from __future__ import annotations

import sys
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llmtrace.capture.lookup import Occurrences

if TYPE_CHECKING:
    from llmtrace.model import Span


@dataclass
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
    offline: bool = False  # `run --offline`: a call the cache cannot answer fails at its call site, unsent
    # How often each request was asked in this run; a fork child goes on with its parent's counts.
    occurrences: Occurrences = field(default_factory=Occurrences)


recorder: Any = None  # the session's core.recorder.Recorder while one is active
settings = WireSettings()

# The call whose HTTP exchange is under way in this context (set around the SDK's request()).
active: ContextVar[Any] = ContextVar("llmtrace_active_call", default=None)
# True while llmtrace makes a call of its own (semantic-cache embeddings): not traced, not cached.
internal: ContextVar[bool] = ContextVar("llmtrace_internal_call", default=False)
# The span a nested session opened (core/session.py): top-level runs and bare SDK calls hang under it.
scope: ContextVar[str | None] = ContextVar("llmtrace_scope", default=None)
# The span a thread's work hangs under, carried from the code that started the thread or submitted the
# work (threads.py): the one piece of context llmtrace carries across threads.
carried: ContextVar[str | None] = ContextVar("llmtrace_thread_parent", default=None)
# LLM spans opened by the callback handler in this context whose HTTP call has not been seen yet.
_expected: ContextVar[list[str] | None] = ContextVar("llmtrace_expected_llm_calls", default=None)


def set_recorder(new: Any) -> None:
    global recorder
    recorder = new


def configure(new: WireSettings) -> None:
    global settings
    settings = new


def expect_call(span_id: str) -> None:
    rec = recorder
    if rec is None:
        return
    # A fresh list per start keeps threads that copied this context from sharing one list.
    alive = [s for s in _expected.get() or [] if rec.get_open(s) is not None]
    _expected.set(alive + [span_id])


def claim() -> "Span | None":
    rec = recorder
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


def langchain_parent() -> str | None:
    config_parent = None
    module = sys.modules.get("langchain_core.runnables.config")
    if module is not None:
        config = module.var_child_runnable_config.get() or {}
        parent = getattr(config.get("callbacks"), "parent_run_id", None)
        config_parent = None if parent is None else str(parent)
    retriever = _retriever.get()
    if retriever is not None and retriever[1] == config_parent:  # nothing started inside the retriever since
        return retriever[0]
    return config_parent or carried.get() or scope.get()


