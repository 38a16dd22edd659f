"""Run a script under another tracer, set up the way its documentation does, then say what it stored.

    python bench/peer_wrap.py noop|openinference|mlflow SCRIPT [ARGS...]

The tracer is set up first, then SCRIPT runs through runpy exactly as `python SCRIPT ARGS` would
run it (sys.argv, sys.path[0], __main__). After it, one JSON line on stdout says what the tracer
kept: {"tracer", "spans", "llm_spans"[, "traces"]}.

- noop: a LangChain BaseCallbackHandler whose callbacks do nothing but count, registered for the
  whole process the way llmtrace registers its own (a configure hook on a ContextVar whose default
  is the handler, so every run in every thread gets it). What it costs is the floor LangChain's
  callback machinery puts under any callback tracer. "spans" counts the runs it saw end.
- openinference: openinference-instrumentation-langchain on an OpenTelemetry SDK TracerProvider
  with a SimpleSpanProcessor into an InMemorySpanExporter (every span kept in the process).
- openinference_otlp(endpoint), langfuse(): the servers' set-ups of bench/bench_server.py (an
  exporter in the background to a local sink), started in each worker by the sitecustomize that
  `boot()` writes.
- mlflow: `mlflow.langchain.autolog()` with a local SQLite tracking store (MLFLOW_TRACKING_URI,
  set by the bench; default a file in the current folder). The traces still queued for MLflow's
  asynchronous logging are flushed when the script ends, inside the timed process; the bench counts
  the traces and spans in the store afterwards.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def noop() -> Callable[[], dict[str, Any]]:
    from contextvars import ContextVar

    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.tracers.context import register_configure_hook

    class Noop(BaseCallbackHandler):
        run_inline = True
        raise_error = False

        def __init__(self) -> None:
            self.ends = 0
            self.llm_ends = 0

        # Every start a tracer needs, implemented (a missing on_chat_model_start makes LangChain
        # fall back to on_llm_start with the messages turned into text, which costs more).
        def on_chain_start(self, *a: Any, **k: Any) -> None: pass
        def on_chat_model_start(self, *a: Any, **k: Any) -> None: pass
        def on_llm_start(self, *a: Any, **k: Any) -> None: pass
        def on_tool_start(self, *a: Any, **k: Any) -> None: pass
        def on_retriever_start(self, *a: Any, **k: Any) -> None: pass

        def on_chain_end(self, *a: Any, **k: Any) -> None: self.ends += 1
        def on_tool_end(self, *a: Any, **k: Any) -> None: self.ends += 1
        def on_retriever_end(self, *a: Any, **k: Any) -> None: self.ends += 1

        def on_llm_end(self, *a: Any, **k: Any) -> None:
            self.ends += 1
            self.llm_ends += 1

    handler = Noop()
    register_configure_hook(ContextVar("bench_noop_handler", default=handler), inheritable=True)
    return lambda: {"spans": handler.ends, "llm_spans": handler.llm_ends}


def openinference() -> Callable[[], dict[str, Any]]:
    from openinference.instrumentation.langchain import LangChainInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        InMemorySpanExporter,
    )

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    LangChainInstrumentor().instrument(tracer_provider=provider)

    def count() -> dict[str, Any]:
        spans = exporter.get_finished_spans()
        llm = sum(1 for s in spans if (s.attributes or {}).get("openinference.span.kind") == "LLM")
        return {"spans": len(spans), "llm_spans": llm}

    return count


def openinference_otlp(endpoint: str, set_global: str = "yes") -> None:
    """OpenInference for a server, as `phoenix.otel.register(endpoint=…, batch=True)` sets it up: a
    TracerProvider (a project name on its resource), a BatchSpanProcessor, the OTLP/HTTP protobuf
    exporter to `endpoint`; the provider made the global one unless `set_global` is "no" (register's
    set_global_tracer_provider=False)."""
    from openinference.instrumentation.langchain import LangChainInstrumentor
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"openinference.project.name": "bench"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    if set_global != "no":
        trace.set_tracer_provider(provider)
    LangChainInstrumentor().instrument(tracer_provider=provider)


def langfuse() -> None:
    """Langfuse's LangChain CallbackHandler, registered for the whole process as `noop` is; the client
    is configured from LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY and LANGFUSE_BASE_URL (set by the bench)
    and exports in the background (its BatchSpanProcessor, OTLP/HTTP, gzip)."""
    from contextvars import ContextVar

    from langchain_core.tracers.context import register_configure_hook
    from langfuse.langchain import CallbackHandler

    register_configure_hook(ContextVar("bench_langfuse_handler", default=CallbackHandler()), inheritable=True)


def boot(folder: Path, setup: str, *args: str) -> str:
    """Write a sitecustomize.py into `folder` that calls this module's `setup(*args)` at start-up (in
    every process whose PYTHONPATH holds `folder`: uvicorn's spawned workers too); return the folder."""
    here = str(Path(__file__).resolve().parent)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(
        f"import sys\nsys.path.append({here!r})\ntry:\n    import peer_wrap\n"
        f"    peer_wrap.{setup}(*{args!r})\nfinally:\n    sys.path.remove({here!r})\n")
    return str(folder)


def mlflow() -> Callable[[], dict[str, Any]]:
    import mlflow as ml

    ml.set_tracking_uri(os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}")
    ml.set_experiment("bench")
    ml.langchain.autolog()

    def flush() -> dict[str, Any]:
        flush_async = getattr(ml, "flush_trace_async_logging", None)
        if flush_async is not None:
            flush_async()
        return {}  # counted from the store by the bench, after the process

    return flush


def main() -> None:
    tracer, script, *args = sys.argv[1:]
    count = {"noop": noop, "openinference": openinference, "mlflow": mlflow}[tracer]()
    sys.argv = [script, *args]
    sys.path[0] = str(Path(script).resolve().parent)
    code = 0
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    sys.stdout.flush()
    print(json.dumps({"tracer": tracer, **count()}), flush=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
