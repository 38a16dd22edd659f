"""Parity: `llmtrace run X` behaves exactly like `python X` for a corpus of LangChain/openai scripts.

For each script in tests/parity/ (the table below says how to call it):
  1. `python tests/parity/X.py ARGS` against a fresh scripted server: the reference behaviour.
  2. `python -m llmtrace run -q tests/parity/X.py ARGS` against another fresh server: the same stdout,
     stderr, exit status and number of requests; in the trace, one span with an HTTP exchange per 2xx
     request, the same token sums as the server sent, and no orphan spans.
  3. The same server again (stats reset), `llmtrace run -q` again: answered from the response cache,
     so 0 requests, with the same stdout and exit status.

Every step's mismatches are collected and reported together, with unified diffs.

The corpus makes ~70 subprocess runs, so it is a step of its own: marked `parity`, left out of the
default `pytest` (pyproject addopts) and run by `pytest -m 'parity or soak'` (the README's test
command and .ci/run run both steps).
"""

from __future__ import annotations

import difflib
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import ROOT, assert_no_orphans, last_trace, server_env
from llmtrace.mock import MockServer, Script

PARITY = Path(__file__).resolve().parent / "parity"
TIMEOUT = 600  # seconds for one run of one script: a guard against a hang, never reached by a busy machine


@dataclass(frozen=True)
class Case:
    covers: str
    args: tuple[str, ...] = ()
    stdin: str = ""
    exit: int = 0
    env: dict[str, str] = field(default_factory=dict)
    needs: str = ""  # a feature the installed LangChain/openai may lack (see _missing): skipped without it


def _missing(feature: str) -> str | None:
    """Why the installed versions cannot run a script that uses `feature`, or None when they can."""
    if feature == "openai-responses":  # the Responses API: openai >= 1.66
        import importlib.util

        if importlib.util.find_spec("openai.resources.responses") is None:
            return "the installed openai SDK has no Responses API (openai >= 1.66)"
    elif feature == "chatopenai-responses":  # ChatOpenAI(use_responses_api=True): langchain-openai >= 0.3.9
        from langchain_openai import ChatOpenAI

        if "use_responses_api" not in ChatOpenAI.model_fields:
            return "the installed langchain-openai has no use_responses_api (langchain-openai >= 0.3.9)"
        return _missing("openai-responses")
    return None


CORPUS: dict[str, Case] = {
    "lcel_batch": Case("LCEL prompt | ChatOpenAI | StrOutputParser, .batch() over 4 inputs"),
    "structured_json_schema": Case("with_structured_output(Pydantic), default json_schema method, and include_raw"),
    "structured_function_calling": Case('with_structured_output(..., method="function_calling") in a prompt chain'),
    "structured_json_mode": Case('with_structured_output(dict schema, method="json_mode")'),
    "responses_api_chat": Case("ChatOpenAI(use_responses_api=True): invoke, stream, bind_tools + one tool round",
                               needs="chatopenai-responses"),
    "rag_inmemory": Case("OpenAIEmbeddings + InMemoryVectorStore.from_texts + retriever + LCEL chain, 2 questions"),
    "langgraph_toolnode": Case("LangGraph StateGraph + ToolNode + tools_condition, math tools, stream_mode=updates"),
    "create_agent_math": Case("langchain.agents.create_agent with the math tools"),
    "astream_events": Case("astream of a chain chunk by chunk, astream_events(version='v2') event counts"),
    "parallel_fallback_retry": Case("RunnableParallel: dead model .with_fallbacks([model]) + JSON chain .with_retry()"),
    "gather_25": Case("asyncio.gather over 25 ainvoke calls"),
    "cli_args_stdin_exit": Case(
        "argparse --n 3 --name X, question from stdin, sys.exit(3)",
        args=("--n", "3", "--name", "Ada"), stdin="What is the capital of Peru?\n", exit=3,
    ),
    "agent_tool_raises": Case("classic AgentExecutor whose tool raises: traceback, exit 1", exit=1),
    "pool_fork": Case('multiprocessing Pool(3), get_context("fork"), 6 calls'),
    "pool_spawn": Case('multiprocessing Pool(3), get_context("spawn"), 6 calls'),
    "subprocess_child": Case("subprocess.run([sys.executable, worker.py]): the child makes 2 calls"),
    "sdk_chat": Case("openai SDK chat.completions.create"),
    "sdk_stream": Case("openai SDK streamed chat completion, every chunk printed"),
    "sdk_responses": Case("openai SDK responses.create, plain and stream=True", needs="openai-responses"),
    "sdk_embeddings": Case("openai SDK embeddings.create, one text and a batch"),
    "sampling_loop": Case("5 x ChatOpenAI(temperature=1).invoke(same prompt), different samples"),
    "classic_math_agent": Case("classic math AgentExecutor (streams its model calls), intermediate steps"),
    "other_provider": Case("ChatAnthropic via ANTHROPIC_BASE_URL if installed, else a custom BaseChatModel with usage"),
}


@dataclass
class Run:
    code: int | None
    stdout: str
    stderr: str
    timed_out: bool = False


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data


def _run(server: MockServer, argv: list[str], case: Case) -> Run:
    env = {
        **os.environ,
        **server_env(server),
        "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{server.port}",
        "ANTHROPIC_API_KEY": "sk-ant-test-not-a-real-key-0000",
        "PYTHONUNBUFFERED": "1",
        **case.env,
    }
    # Own session: on a timeout the whole group (pool workers, children) goes, and no pipe stays open.
    p = subprocess.Popen(argv, cwd=str(ROOT), env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = p.communicate(case.stdin.encode(), timeout=TIMEOUT)
        return Run(p.returncode, _text(out), _text(err))
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = p.communicate()
        return Run(None, _text(out), _text(err), timed_out=True)


def _diff(what: str, want: str, got: str, label: str) -> str | None:
    if want == got:
        return None
    lines = list(difflib.unified_diff(
        want.splitlines(keepends=True), got.splitlines(keepends=True), fromfile=f"python: {what}", tofile=f"{label}: {what}",
    ))
    if len(lines) > 120:
        lines = lines[:120] + [f"... ({len(lines) - 120} more diff lines)\n"]
    return f"{what} differs:\n" + "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _ok_requests(stats: dict) -> int:
    return sum(n for status, n in stats["by_status"].items() if 200 <= int(status) < 300)


def _server(name: str) -> MockServer:
    return MockServer(Script.load(PARITY / f"{name}.mock.json")).start()


@pytest.mark.parity
@pytest.mark.parametrize("name", list(CORPUS))
def test_parity(name: str, llmtrace_home: Path) -> None:
    case = CORPUS[name]
    script = f"tests/parity/{name}.py"
    reason = _missing(case.needs) if case.needs else None
    if reason:
        pytest.skip(reason)

    # 1. plain python: the reference. A failure here is a bug in the corpus, not in llmtrace.
    server = _server(name)
    try:
        ref = _run(server, [sys.executable, script, *case.args], case)
        ref_stats = server.stats.as_dict()
    finally:
        server.stop()
    assert not ref.timed_out, f"python {script} timed out\n{ref.stderr}"
    assert ref.code == case.exit, f"python {script} exited {ref.code}, the table says {case.exit}\n{ref.stderr}"

    problems: list[str] = []

    def step(n: int, label: str, run: Run, texts: tuple[str, ...], checks: Callable[[], list[str]]) -> None:
        """Compare a traced run with the python run; collect what differs."""
        mine: list[str] = [f"timed out after {TIMEOUT}s"] if run.timed_out else []
        for what in texts:
            d = _diff(what, getattr(ref, what), getattr(run, what), label)
            if d:
                mine.append(d)
        if run.code != ref.code:
            mine.append(f"exit status {run.code}, python gave {ref.code}")
        mine.extend(checks())
        problems.extend(f"step {n} ({label}): {m}" for m in mine)

    # 2. traced by llmtrace: the same behaviour, and a trace that accounts for every request.
    server = _server(name)
    try:
        traced = _run(server, [sys.executable, "-m", "llmtrace", "run", "-q", script, *case.args], case)
        stats = server.stats.as_dict()

        def trace_checks() -> list[str]:
            out: list[str] = []
            if stats["requests"] != ref_stats["requests"]:
                out.append(f"server got {stats['requests']} requests {stats['by_path']}, "
                           f"under python {ref_stats['requests']} {ref_stats['by_path']}")
            try:
                trace, spans = last_trace(llmtrace_home)
            except Exception as e:  # no trace at all
                return out + [f"no trace in the store: {type(e).__name__}: {e}"]
            if trace.exit_code != ref.code:
                out.append(f"the trace records exit status {trace.exit_code}, python gave {ref.code}")
            exchanged = [s for s in spans if s.response is not None]
            if len(exchanged) != _ok_requests(stats):
                out.append(f"{len(exchanged)} spans carry an HTTP exchange, the server answered "
                           f"{_ok_requests(stats)} requests with 2xx {stats['by_status']}")
            usage = stats.get("usage")
            if usage is None:
                out.append("the mock server reports no usage sums (stats.as_dict()['usage'] missing)")
            else:
                got = {
                    "input_tokens": sum(s.input_tokens or 0 for s in exchanged),
                    "output_tokens": sum(s.output_tokens or 0 for s in exchanged),
                }
                want = {k: usage.get(k, 0) for k in ("input_tokens", "output_tokens")}
                if got != want:
                    out.append(f"span token sums {got} != usage the server sent {want}")
            try:
                assert_no_orphans(spans)
            except AssertionError as e:
                out.append(str(e))
            return out

        step(2, "llmtrace run", traced, ("stdout", "stderr"), trace_checks)

        # 3. again on the same server: everything replayed from the response cache.
        server.stats.reset()
        replay = _run(server, [sys.executable, "-m", "llmtrace", "run", "-q", script, *case.args], case)
        replay_stats = server.stats.as_dict()

        def replay_checks() -> list[str]:
            if replay_stats["requests"]:
                return [f"{replay_stats['requests']} requests reached the server {replay_stats['by_path']}, "
                        "the cache should have answered all"]
            return []

        step(3, "llmtrace run, cached", replay, ("stdout",), replay_checks)
    finally:
        server.stop()

    if problems:
        pytest.fail(f"{script} ({case.covers}):\n\n" + "\n".join(problems), pytrace=False)


def test_corpus_is_complete() -> None:
    """Every script in tests/parity has a row and a reply script (workers started by others excepted)."""
    scripts = {p.stem for p in PARITY.glob("*.py") if not p.stem.endswith("_worker")}
    assert scripts == set(CORPUS)
    assert all((PARITY / f"{name}.mock.json").is_file() for name in CORPUS)
    assert len(CORPUS) >= 20
