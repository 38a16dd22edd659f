"""`llmtrace run`, `replay` and `mock`: the commands that run a script or serve the scripted API. Their work is in
`llmtrace.run` (no typer), which the fast path of `llmtrace run` calls directly."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

from llmtrace.cli.app import EXIT_CODES_HELP, app
from llmtrace.cli.common import (
    open_cli_store,
    parse_tags,
    stderr_console,
)
from llmtrace.errors import ExitCode, UserError
from llmtrace.run import launch
from llmtrace.run.launch import find_mock_script


@app.command(
    context_settings={"allow_interspersed_args": False},
    epilog="Options for llmtrace go before the script; everything after the script is passed to it. " + EXIT_CODES_HELP,
)
def run(
    script_arg: str = typer.Argument(..., metavar="SCRIPT", help="The Python script to run, unmodified.", show_default=False),
    args: Optional[List[str]] = typer.Argument(None, help="Arguments passed to the script as sys.argv[1:]."),
    mock: bool = typer.Option(False, "--mock", help="Answer OpenAI calls from the built-in scripted server on 127.0.0.1 (offline, no API key). Replies come from SCRIPT.mock.json/.yaml beside the script if present."),
    mock_script: Optional[Path] = typer.Option(None, "--mock-script", help="Reply script for --mock (JSON or YAML)."),
    trace_id: Optional[str] = typer.Option(None, "--trace-id", help="Use this UUID as the trace id instead of a new one."),
    name: Optional[str] = typer.Option(None, "--name", help="Name of the trace (default: the script's file name)."),
    tag: Optional[List[str]] = typer.Option(None, "--tag", help="Tag the trace: key=value (repeatable)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Don't print the summary when the script ends."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Don't answer calls from the response cache (or fill it)."),
    cache_mode: str = typer.Option("replay", "--cache-mode", metavar="replay|reuse", help="replay: a re-run gets the answers an earlier run got, in order, while identical requests within one run still go to the provider (resamples differ, retries get new answers). reuse: every identical request is answered from the cache, also within a run (gateway-style)."),
    no_children: bool = typer.Option(False, "--no-children", help="Don't trace Python child processes (multiprocessing, subprocess); also LLMTRACE_CHILDREN=0."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Where the response cache lives (default: LLMTRACE_HOME/cache)."),
    cache_ttl: Optional[str] = typer.Option(None, "--cache-ttl", help="Entries expire after this long: 3600, 30m, 12h, 7d (default: never)."),
    cache_size: int = typer.Option(1024, "--cache-size", min=1, help="Cache size limit in MiB; least recently stored entries go first."),
    semantic_cache: bool = typer.Option(False, "--semantic-cache", help="Also answer short prompts close in meaning to an earlier one (embeddings via the same endpoint)."),
    semantic_threshold: float = typer.Option(0.95, "--semantic-threshold", min=0.0, max=1.0, help="Cosine similarity needed for a semantic hit."),
    embedding_model: str = typer.Option("text-embedding-3-small", "--embedding-model", help="Embedding model for --semantic-cache."),
    otlp: Optional[str] = typer.Option(None, "--otlp", help="Also stream spans live to this OTLP/HTTP endpoint (default: OTEL_EXPORTER_OTLP_ENDPOINT if set). Needs llmtrace[otel]."),
    otlp_header: Optional[List[str]] = typer.Option(None, "--otlp-header", metavar="NAME=VALUE", help="Send this header with the OTLP requests (repeatable; added to OTEL_EXPORTER_OTLP_HEADERS). MLflow needs x-mlflow-experiment-id=ID."),
    project: Optional[str] = typer.Option(None, "--project", help="Project the trace belongs to in OTLP backends (Phoenix's project); stored as the tag project=NAME. Default: the `project` tag, LLMTRACE_PROJECT, or the script's name."),
    retries: int = typer.Option(4, "--retries", min=0, max=20, help="Retries after a failed call (429, 5xx, timeouts, dropped connections): 4 means up to 5 attempts; 0 turns retrying off."),
    max_cost: Optional[float] = typer.Option(None, "--max-cost", min=0, envvar="LLMTRACE_MAX_COST", metavar="USD", help="Budget: once the run's LLM calls have cost this much, the next call is not sent and raises llmtrace.BudgetExceeded in the script (cache hits cost nothing). Also LLMTRACE_MAX_COST."),
    max_calls: Optional[int] = typer.Option(None, "--max-calls", min=0, envvar="LLMTRACE_MAX_CALLS", metavar="N", help="Budget: LLM calls sent to the provider; the next one raises llmtrace.BudgetExceeded. Also LLMTRACE_MAX_CALLS."),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", min=0, envvar="LLMTRACE_MAX_TOKENS", metavar="N", help="Budget: tokens in + out; once spent, the next call raises llmtrace.BudgetExceeded. Also LLMTRACE_MAX_TOKENS."),
    split: bool = typer.Option(False, "--split", help="One trace per top-level invocation (each chain.invoke, agent run or bare SDK call at the top), all sharing the run's id and tags: for a script that answers many questions or serves requests. See them with `llmtrace ls --run ID`."),
    output: Optional[Path] = typer.Option(None, "--output", metavar="OUT.ipynb", help="For a notebook (SCRIPT.ipynb, executed in a fresh kernel): write the executed notebook, outputs included, here."),
) -> None:
    """Run SCRIPT exactly as `python SCRIPT ARGS…` would, recording every LangChain and OpenAI step.

    Example: llmtrace run --mock sample_agents/math_agent.py

    The script sees its trace id in LLMTRACE_TRACE_ID. When it ends, a summary goes to stderr.
    """
    launch.start_run(
        script_arg, args, mock=mock, mock_script=mock_script, trace_id=trace_id, name=name, tag=tag, quiet=quiet,
        no_cache=no_cache, cache_mode=cache_mode, no_children=no_children, cache_dir=cache_dir, cache_ttl=cache_ttl,
        cache_size=cache_size, semantic_cache=semantic_cache, semantic_threshold=semantic_threshold,
        embedding_model=embedding_model, otlp=otlp, otlp_header=otlp_header, project=project, retries=retries,
        max_cost=max_cost, max_calls=max_calls, max_tokens=max_tokens, split=split, output=output,
    )


@app.command(epilog="Arguments after -- replace the recorded ones: llmtrace replay last -- --city Oslo. " + EXIT_CODES_HELP)
def replay(
    trace: str = typer.Argument(..., help="The trace to replay: id, any unique prefix, or last / last~1 …"),
    args: Optional[List[str]] = typer.Argument(None, help="Arguments for the script instead of the recorded ones (after --)."),
    script: Optional[Path] = typer.Option(None, "--script", help="Run this script (say, an edited copy) instead of the recorded one."),
    live_after_divergence: bool = typer.Option(False, "--live-after-divergence", help="When a request differs from the recording, report it and send it and every later call to the provider (needs an API key, or --mock) instead of stopping."),
    with_failures: bool = typer.Option(False, "--with-failures", help="Replay the recorded failed attempts (retries) and failures as they happened, without the waits; by default each call gets its final answer."),
    mock: bool = typer.Option(False, "--mock", help="Live calls (after a divergence) go to the built-in scripted server."),
    mock_script: Optional[Path] = typer.Option(None, "--mock-script", help="Reply script for --mock (JSON or YAML)."),
    name: Optional[str] = typer.Option(None, "--name", help="Name of the new trace (default: the replayed one's)."),
    tag: Optional[List[str]] = typer.Option(None, "--tag", help="Tag the new trace: key=value (repeatable)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Don't print the summary when the script ends."),
) -> None:
    """Run a trace's script again with every LLM and embedding call answered from that trace's recorded
    responses, in order: no network, no API key, $0. Works on an imported trace.

    The first request that differs from the recording is reported (which call, and a diff of the
    request) and raises llmtrace.ReplayDiverged there, unless --live-after-divergence. The replay is a
    new trace tagged replay_of=ID: compare them with `llmtrace diff ID last`.

    Example: llmtrace replay last ; llmtrace replay 3f2a --script agent_edited.py
    """
    from llmtrace.run import script as runner
    from llmtrace.capture.replay import ReplaySource
    from llmtrace.store.queries import get_spans, get_trace, resolve_trace_id

    db = open_cli_store(write=False)
    t = get_trace(db, resolve_trace_id(db, trace))
    spans = get_spans(db, t.id, payloads=True)
    db.close()
    if script is not None:
        script_arg = str(script)
    elif t.script and os.path.isfile(t.script):
        typed = t.argv[0] if t.argv else ""  # argv[0] as it was typed, when it still names the script from here
        script_arg = typed if typed and os.path.isfile(typed) and os.path.samefile(typed, t.script) else t.script
    else:
        raise UserError(f"the recorded script {t.script or '(none)'} is not on this machine: give --script PATH")
    problem = runner.check_script(script_arg)
    if problem is not None:
        runner.print_syntax_error(problem)
        raise typer.Exit(int(ExitCode.ERROR))
    env: dict[str, str] = {}
    if not mock:
        if live_after_divergence and not (os.environ.get("OPENAI_API_KEY") or os.environ.get("ANTHROPIC_API_KEY")):
            raise UserError("--live-after-divergence needs an API key (OPENAI_API_KEY) for the live calls, or --mock")
        for sdk in ("OPENAI", "ANTHROPIC"):  # no key: the clients still construct, and nothing can reach a provider
            if not os.environ.get(f"{sdk}_API_KEY"):
                env[f"{sdk}_API_KEY"] = "llmtrace-replay-no-key"
                env[f"{sdk}_BASE_URL"] = "http://127.0.0.1:9/v1" if sdk == "OPENAI" else "http://127.0.0.1:9"
    source = ReplaySource(spans, live_after_divergence=live_after_divergence, with_failures=with_failures)
    tags = {**t.tags, **parse_tags(tag), "replay_of": t.id}

    def after() -> None:
        from llmtrace.render.fmt import plural

        what = f"replay of {t.id[:8]}: {source.answered} of {plural(len(source.calls), 'recorded call')} answered from the recording"
        stderr_console().print(what + (", then it diverged" if source.diverged else ""), style="yellow" if source.diverged else "")

    opts = runner.RunOptions(script_arg, list(args) if args else list(t.argv[1:]), None, name or t.name, tags,
                             cache=False, replay=source)
    launch.launch(opts, find_mock_script(Path(script_arg), mock_script) if mock else None, quiet, env, after)


@app.command()
def mock(
    script: Optional[Path] = typer.Option(None, "--script", help="Reply script (JSON or YAML)."),
    port: int = typer.Option(8765, "--port", help="Port on 127.0.0.1 (0 picks a free one)."),
    latency_ms: Optional[float] = typer.Option(None, "--latency-ms", help="Delay added to every request."),
    faults: Optional[str] = typer.Option(None, "--faults", help="Statuses for the next requests, e.g. 429,503,200 (also: timeout, drop)."),
) -> None:
    """Serve the scripted OpenAI-compatible API on 127.0.0.1 until Ctrl-C.

    Example: llmtrace mock --script sample_agents/math_agent.mock.json --port 8765
    then point a script at it with OPENAI_BASE_URL=http://127.0.0.1:8765/v1.
    """
    from llmtrace.mock import MockServer, Script
    from llmtrace.mock.script import Fault

    try:
        s = Script.load(script) if script else Script()
        if latency_ms is not None:
            s.latency_ms = latency_ms
        if faults:
            s.faults = [Fault.parse(f) for f in faults.split(",") if f.strip()]
    except (OSError, ValueError) as e:
        raise UserError(f"bad mock script or faults: {e}") from None
    try:
        server = MockServer(s, port=port).start()
    except OSError as e:
        raise UserError(f"cannot listen on 127.0.0.1:{port}: {e.strerror}") from None
    print(f"llmtrace mock: serving {server.base_url} (control requests need the header "
          f"X-Mock-Token: {server.control_token}; Ctrl-C to stop)", file=sys.stderr, flush=True)
    try:
        import time

        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
