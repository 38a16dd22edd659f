"""Capture: the only room that imports LangChain or openai.

`install(recorder, settings)` makes every LangChain run, every openai or anthropic SDK call and every request
to a provider API httpwire.py knows (Ollama, Gemini) in this process land in the recorder, with no change to
the user's code. Nothing is imported here: the SDKs are patched (wire.py, httpwire.py) and the LangChain callback registered (handler.py) the moment the script itself imports
them. Sessions (core/session.py) call `install` and `uninstall`; nothing else should.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

_hook_var: ContextVar | None = None
_SDK_CLIENTS = ("openai._base_client", "anthropic._base_client")  # wire.py patches their request()
_HTTP_CLIENTS = ("httpx._client", "httpx2._client")  # other providers' SDKs (ollama, google-genai): httpwire.py
_LANGCHAIN = "langchain_core.tracers.context"  # where the callback handler is registered
# What `install` waits for: a child process of a traced run starts recording when it imports the first.
WATCHED = (*_SDK_CLIENTS, *_HTTP_CLIENTS, _LANGCHAIN)


def install(recorder: Any, settings: Any = None) -> None:
    """`recorder` is the session's core.recorder.Recorder; `settings` is a context.WireSettings (cache, retry policy, budget, replay); None for none of them."""
    from llmtrace.capture import context, hooks, threads, wire

    context.configure(settings or context.WireSettings())
    context.set_recorder(recorder)
    for name in _SDK_CLIENTS:
        hooks.when_imported(name, wire.patch_sdk)
    for name in _HTTP_CLIENTS:
        hooks.when_imported(name, _patch_httpx)
    threads.install()
    if _hook_var is None:
        hooks.when_imported(_LANGCHAIN, _register_handler)


def _patch_httpx(client_module: Any) -> None:
    from llmtrace.capture import httpwire

    httpwire.patch_httpx(client_module)


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
    from llmtrace.capture import context

    context.set_recorder(None)
    if context.settings.cache is not None:
        context.settings.cache.close()
    context.configure(context.WireSettings())
