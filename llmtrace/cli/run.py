"""`llmtrace run`, `replay` and `mock`: the commands that run a script or serve the scripted API. Their work is in
`llmtrace.cli.launch` (no typer), which the fast path of `llmtrace run` calls directly."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, List, Optional

import typer

from llmtrace.cli import settings
from llmtrace.cli.app import EXIT_CODES_HELP, app
from llmtrace.cli.common import (
    open_cli_store,
    parse_tags,
    stderr_console,
)
from llmtrace.errors import ExitCode, UserError
from llmtrace.cli import launch
from llmtrace.cli.launch import find_mock_script


def _opt(key: str) -> Any:
    """The typer option for one row of the table both parsers read (`llmtrace.cli.settings`). Its default
    is shown; the value used is the command line's, else the environment's, else pyproject.toml's."""
    o = settings.BY_KEY[key]
    extra: dict[str, Any] = {}
    if o.low is not None:
        extra["min"] = o.low if o.kind == "float" else int(o.low)
    if o.high is not None:
        extra["max"] = o.high if o.kind == "float" else int(o.high)
    if o.metavar:
        extra["metavar"] = o.metavar
    where = [f"env: {', '.join(o.envs)}"] if o.envs else []
    where += [f"pyproject: {o.toml_key}"] if o.toml else []
    text = o.help + (f"  [{'; '.join(where)}]" if where else "")
    return typer.Option(o.default, *o.flags, help=text, show_default=o.default not in (None, False), **extra)


@app.command(
    context_settings={"allow_interspersed_args": False},
    epilog="Options for llmtrace go before the script; everything after the script is passed to it. "
           "Each option can also be set in the environment (LLMTRACE_RETRIES=2) or in [tool.llmtrace] of the "
           "nearest pyproject.toml (retries = 2): the command line wins over the environment, the environment over "
           "the file. " + EXIT_CODES_HELP,
)
def run(
    ctx: typer.Context,
    script_arg: str = typer.Argument(..., metavar="SCRIPT", help="The Python script to run, unmodified: a file, a console script on PATH (pytest, uvicorn), or with -m a module.", show_default=False),
    args: Optional[List[str]] = typer.Argument(None, metavar="ARGS", help="Arguments passed to the script as sys.argv[1:]."),
    module: bool = typer.Option(False, "-m", help="Run SCRIPT as a module, as `python -m SCRIPT ARGS…` does: llmtrace run -m pytest -q tests."),
    mock: bool = _opt("mock"),
    mock_script: Optional[Path] = _opt("mock_script"),
    trace_id: Optional[str] = _opt("trace_id"),
    name: Optional[str] = _opt("name"),
    tag: Optional[List[str]] = _opt("tag"),
    quiet: bool = _opt("quiet"),
    no_cache: bool = _opt("no_cache"),
    offline: bool = _opt("offline"),
    cache_mode: str = _opt("cache_mode"),
    no_children: bool = _opt("no_children"),
    cache_dir: Optional[Path] = _opt("cache_dir"),
    cache_ttl: Optional[str] = _opt("cache_ttl"),
    cache_size: int = _opt("cache_size"),
    semantic_cache: bool = _opt("semantic_cache"),
    semantic_threshold: float = _opt("semantic_threshold"),
    embedding_model: str = _opt("embedding_model"),
    otlp: Optional[str] = _opt("otlp"),
    otlp_header: Optional[List[str]] = _opt("otlp_header"),
    project: Optional[str] = _opt("project"),
    retries: int = _opt("retries"),
    max_cost: Optional[float] = _opt("max_cost"),
    max_calls: Optional[int] = _opt("max_calls"),
    max_tokens: Optional[int] = _opt("max_tokens"),
    split: bool = _opt("split"),
    output: Optional[Path] = typer.Option(None, "--output", metavar="OUT.ipynb", help="For a notebook (SCRIPT.ipynb, executed in a fresh kernel): write the executed notebook, outputs included, here."),
) -> None:
    """Run SCRIPT exactly as `python SCRIPT ARGS…` would (or a module as `python -m`), recording every
    LangChain and OpenAI step.

    Example: llmtrace run --mock sample_agents/math_agent.py ; llmtrace run -m pytest -q tests

    The script sees its trace id in LLMTRACE_TRACE_ID. When it ends, a summary goes to stderr.
    """
    values = locals()
    # Only what was typed: the rest comes from the environment or pyproject.toml (launch.start_run).
    given = {o.key: values[o.key] for o in settings.OPTIONS
             if _source_name(ctx, o.key) == "COMMANDLINE" and values[o.key] is not None}
    launch.start_run(script_arg, list(args or []), **({"module": True} if module else {}),
                     **({"output": output} if output is not None else {}), **given)


def _source_name(ctx: typer.Context, param: str) -> str:
    source = ctx.get_parameter_source(param)
    return getattr(source, "name", "")


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
