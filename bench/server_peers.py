"""The ways bench/bench_server.py serves the app, and how it tells that a way's tracer really traced.

Each way is the same command (`PYTHON tests/agents/uvicorn_app.py PORT 2`) with a different set-up:

- plain: nothing; noop: bench/peer_wrap.py's do-nothing callback handler in every worker (a
  sitecustomize); traced: under `llmtrace run -q --split --no-cache`.
- langsmith: LangChain's own tracer, switched on by environment only, as LangSmith's docs say
  (LANGSMITH_TRACING=true, LANGSMITH_ENDPOINT, LANGSMITH_API_KEY, LANGSMITH_PROJECT), in this
  interpreter (langsmith comes with langchain-core). Its client batches runs on a background thread
  and sends them zstd-compressed to /runs/multipart (what the sink's /info lets it do, as the hosted
  service does).
- openinference: openinference-instrumentation-langchain, set up in every worker by a sitecustomize
  as `phoenix.otel.register(batch=True)` does: global TracerProvider, BatchSpanProcessor, OTLP/HTTP
  protobuf exporter to the sink's /v1/traces. A global TracerProvider also switches on FastAPI's own
  tracing (FastAPI ≥ 0.1xx traces each request natively when one is set: four more spans a request,
  exported beside OpenInference's and counted apart).
- openinference-local: the same with the provider kept out of the global slot (register's
  `set_global_tracer_provider=False`): LangChain's spans only, FastAPI's tracing left off.
- langfuse: langfuse's LangChain CallbackHandler registered for the whole process (as noop is), the
  client configured by LANGFUSE_PUBLIC_KEY/SECRET_KEY/BASE_URL, exporting OTLP/HTTP (gzip) to the
  sink's /api/public/otel/v1/traces in the background.

openinference and langfuse each run in a venv of their own made with uv (bench_peers.peer_python),
named server-<way> under bench/.venvs, with fastapi, starlette and uvicorn beside bench_peers' pinned
LangChain packages, all at this interpreter's versions. A venv that cannot be made skips its way.
"""

from __future__ import annotations

import importlib.util
import os
import sqlite3
from contextlib import closing
from pathlib import Path

from bench.bench_peers import PINNED, peer_python
from bench.common import PY, ROOT, llmtrace
from bench.peer_wrap import boot

APP = ROOT / "tests" / "agents" / "uvicorn_app.py"
WAYS = ("plain", "noop", "traced", "langsmith", "openinference", "openinference-local", "langfuse")
VENVS = {"openinference": ["openinference-instrumentation-langchain", "opentelemetry-sdk",
                           "opentelemetry-exporter-otlp-proto-http"],
         "langfuse": ["langfuse"]}
SERVER_PINS = (*PINNED, "fastapi", "starlette", "uvicorn")
# What proves a way traced, and how many a request makes: llmtrace, LLM spans ended in its store;
# the peers, what reached the sink: LangSmith runs, the OTLP spans of the tracer's own scope (each
# request is three LangChain runs: the chain "answer", its prompt, ChatOpenAI).
UNITS = {"traced": ("LLM spans stored", 1), "langsmith": ("runs", 3), "openinference": ("LangChain spans", 3),
         "openinference-local": ("LangChain spans", 3), "langfuse": ("spans", 3)}
SCOPES = {"openinference": "openinference.instrumentation.langchain",
          "openinference-local": "openinference.instrumentation.langchain", "langfuse": "langfuse-sdk"}
SINKS = ("langsmith", "openinference", "openinference-local", "langfuse")
# The user's own tracing settings never leak into a serving.
_SCRUB = ("LANGSMITH_", "LANGCHAIN_TRACING", "LANGCHAIN_API_KEY", "LANGCHAIN_ENDPOINT", "LANGCHAIN_PROJECT",
          "LANGFUSE_", "OTEL_", "PHOENIX_", "LLMTRACE_TRACE_ID")


def base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB)}


def interpreters(ways: list[str], create: bool) -> tuple[dict[str, str], dict[str, str]]:
    """The Python each way runs with, and the ways skipped with why."""
    pythons, skipped = {}, {}
    for way in ways:
        venv = way.split("-")[0]
        if venv in VENVS:
            py, why = peer_python(f"server-{venv}", create, VENVS[venv], SERVER_PINS)
            if py is None:
                skipped[way] = why
            else:
                pythons[way] = str(py)
        elif way == "langsmith" and importlib.util.find_spec("langsmith") is None:
            skipped[way] = "langsmith is not installed in this interpreter"
        else:
            pythons[way] = PY
    return pythons, skipped


def command(way: str, python: str, port: int, scratch: str, sink: str | None) -> tuple[list[str], dict[str, str]]:
    """The command serving the app `way` on `port`, and the environment it adds (`sink`: the URL
    the peers export to)."""
    serve = [str(APP), str(port), "2"]
    if way == "traced":
        return llmtrace("run", "-q", "--split", "--no-cache", *serve), {}
    if way == "noop":  # uvicorn's workers are spawned: a sitecustomize sets the handler up in each
        folder = boot(Path(scratch) / "noop-boot", "noop")
        return [python, *serve], {"PYTHONPATH": os.pathsep.join(p for p in (folder, os.environ.get("PYTHONPATH")) if p)}
    if way == "langsmith":
        return [python, *serve], {"LANGSMITH_TRACING": "true", "LANGSMITH_ENDPOINT": str(sink),
                                  "LANGSMITH_API_KEY": "bench", "LANGSMITH_PROJECT": "bench-server"}
    if way.startswith("openinference"):  # a venv's interpreter: nothing of llmtrace's on its path
        glob = "no" if way.endswith("-local") else "yes"
        return [python, *serve], {"PYTHONPATH": boot(Path(scratch) / f"oi-boot-{glob}", "openinference_otlp",
                                                     f"{sink}/v1/traces", glob)}
    if way == "langfuse":
        return [python, *serve], {"PYTHONPATH": boot(Path(scratch) / "lf-boot", "langfuse"),
                                  "LANGFUSE_PUBLIC_KEY": "pk-lf-bench", "LANGFUSE_SECRET_KEY": "sk-lf-bench",
                                  "LANGFUSE_BASE_URL": str(sink)}
    return [python, *serve], {}


def stored_llm_spans(home: str) -> int:
    """LLM spans ended in llmtrace's store under `home` (0 before it exists)."""
    db = Path(home) / "traces.db"
    if not db.exists():
        return 0
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as c:
        return c.execute("SELECT count(*) FROM spans WHERE kind = 'llm' AND end_us IS NOT NULL").fetchone()[0]
