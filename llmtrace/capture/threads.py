"""Carry the caller's context into threads, so runs started in workers keep their parent.

LangChain tracks the current run in a ContextVar; `threading.Thread` and a plain
`ThreadPoolExecutor` start their work in an empty context, so an LLM call made in a worker would
lose its parent. These patches copy the submitting context, as LangChain's own executor does.
"""

from __future__ import annotations

import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    orig_start = threading.Thread.start
    orig_submit = ThreadPoolExecutor.submit

    def start(self: threading.Thread) -> None:
        ctx = contextvars.copy_context()
        run = self.run
        self.run = lambda: ctx.run(run)  # type: ignore[method-assign]
        orig_start(self)

    def submit(self: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        return orig_submit(self, contextvars.copy_context().run, fn, *args, **kwargs)

    threading.Thread.start = start  # type: ignore[method-assign]
    ThreadPoolExecutor.submit = submit  # type: ignore[method-assign]
