"""Carry llmtrace's parent link into threads, so work started in a thread hangs under the run that started it.

`threading.Thread` and a plain `ThreadPoolExecutor` run their work without the caller's context
variables, under python as under llmtrace: a script's threads see its ContextVars' defaults, and so do
LangChain's (its current run and config). Only llmtrace's own link crosses: the span the thread's work
belongs under, set in the worker's own context (nothing else of it is touched, so what a pool worker
keeps from one task to the next stays as python has it).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from llmtrace.capture import context

_installed = False


def _parent() -> str | None:
    return context.langchain_parent() if context.recorder is not None else None


def _carrying(parent: str, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    token = context.carried.set(parent)
    try:
        return fn(*args, **kwargs)
    finally:
        context.carried.reset(token)


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    orig_start = threading.Thread.start
    orig_submit = ThreadPoolExecutor.submit

    def start(self: threading.Thread) -> None:
        parent = _parent()
        if parent is not None:
            run = self.run
            self.run = lambda: _carrying(parent, run)  # type: ignore[method-assign]
        orig_start(self)

    def submit(self: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        parent = _parent()
        if parent is None:
            return orig_submit(self, fn, *args, **kwargs)
        return orig_submit(self, _carrying, parent, fn, *args, **kwargs)

    threading.Thread.start = start  # type: ignore[method-assign]
    ThreadPoolExecutor.submit = submit  # type: ignore[method-assign]
