"""Capture: the only room that imports LangChain or openai.

`install(recorder)` makes every LangChain run and every openai SDK call in this process land in
the recorder, with no change to the user's code. Nothing is imported here: openai is patched and
the LangChain callback registered the moment the script itself imports them.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from llmtrace.core.recorder import Recorder

_hook_var: ContextVar | None = None


def install(recorder: Recorder, settings: Any = None, *, keep_counts: bool = False) -> None:
    """`settings` is a wire.WireSettings (cache, retry policy, semantic cache); None for neither.
    `keep_counts`: a fork child goes on counting its parent's requests (see wire.Occurrences)."""
    from llmtrace.capture import hooks, threads, wire

    wire.configure(settings or wire.WireSettings(), keep_counts=keep_counts)
    wire.set_recorder(recorder)
    for sdk in ("openai", "anthropic"):
        hooks.when_imported(f"{sdk}._base_client", wire.patch_sdk)
    threads.install()
    if _hook_var is None:
        hooks.when_imported("langchain_core.tracers.context", _register_handler)


def _register_handler(context_module: Any) -> None:
    global _hook_var
    if _hook_var is not None:
        return
    from llmtrace.capture.handler import TraceHandler

    # There is no unregister, so one handler per process; it finds the current recorder per call.
    # It is the ContextVar's default, so threads that never saw a .set() still get it.
    _hook_var = ContextVar("llmtrace_handler", default=TraceHandler())
    context_module.register_configure_hook(_hook_var, inheritable=True)


def uninstall() -> None:
    from llmtrace.capture import wire

    wire.set_recorder(None)
    if wire._settings.cache is not None:
        wire._settings.cache.close()
    wire.configure(wire.WireSettings())
