"""Capture: the only room that imports LangChain or openai.

`install(recorder)` makes every LangChain run and every openai chat call in this process land in
the recorder, with no change to the user's code.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from llmtrace.recorder import Recorder

_hook_var: ContextVar | None = None


def install(recorder: Recorder, settings: Any = None) -> None:
    """`settings` is a wire.WireSettings (cache, retry policy, semantic cache); None for neither."""
    global _hook_var
    from llmtrace.capture import threads, wire

    wire.configure(settings or wire.WireSettings())
    wire.set_recorder(recorder)
    wire.patch_openai()
    threads.install()
    if _hook_var is not None:
        return
    try:
        from langchain_core.tracers.context import register_configure_hook
    except ImportError:  # a script that uses only the openai SDK
        return
    from llmtrace.capture.handler import TraceHandler

    # There is no unregister, so one handler per process; it finds the current recorder per call.
    # It is the ContextVar's default, so threads that never saw a .set() still get it.
    _hook_var = ContextVar("llmtrace_handler", default=TraceHandler())
    register_configure_hook(_hook_var, inheritable=True)


def uninstall() -> None:
    from llmtrace.capture import wire

    wire.set_recorder(None)
    if wire._settings.cache is not None:
        wire._settings.cache.close()
    wire.configure(wire.WireSettings())
