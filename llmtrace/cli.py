"""The `llmtrace` command line: parse arguments, call one core function, hand the result to a renderer.

Heavy modules (LangChain, openai, genai-prices) are imported only inside `run`.
"""

from __future__ import annotations

import json
import sys
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any, List, Optional

import typer
from typer._click import exceptions as click_exc

from llmtrace import __version__
from llmtrace.errors import ExitCode, UserError

EXIT_CODES_HELP = (
    "Exit codes: the script's own code for `run` (1 for an uncaught exception, 130 for Ctrl-C, "
    "143 for SIGTERM); 2 bad arguments or unknown trace; 3 script missing, not Python or not compiling; "
    "4 trace store cannot be opened or written."
)

app = typer.Typer(
    help="Record what your LangChain agents did and what it cost, in one local SQLite file.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        print(f"llmtrace {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Record what your LangChain agents did and what it cost, in one local SQLite file."""


def _stderr() -> Any:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def _stdout() -> Any:
    from rich.console import Console

    return Console(highlight=False)


def parse_tags(values: list[str] | None) -> dict[str, str]:
    tags: dict[str, str] = {}
    for raw in values or []:
        key, sep, value = raw.partition("=")
        if not sep or not key.strip():
            raise UserError(f"bad tag {raw!r}: expected key=value")
        tags[key.strip()] = value.strip()
    return tags


def _open_store() -> Any:
    from llmtrace.store import open_store

    return open_store()


def _find_mock_script(script: Path, explicit: Path | None) -> Any:
    from llmtrace.mock import Script

    candidates = [explicit] if explicit else [script.with_suffix(s) for s in (".mock.json", ".mock.yaml", ".mock.yml")]
    for path in candidates:
        if path is not None and path.is_file():
            try:
                return Script.load(path)
            except (ValueError, OSError) as e:
                raise UserError(f"bad mock script {path}: {e}") from None
    if explicit:
        raise UserError(f"no such mock script: {explicit}")
    return Script()


@app.command(
    context_settings={"allow_interspersed_args": False},
    epilog="Options for llmtrace go before the script; everything after the script is passed to it. " + EXIT_CODES_HELP,
)
def run(
    script: Path = typer.Argument(..., help="The Python script to run, unmodified.", show_default=False),
    args: Optional[List[str]] = typer.Argument(None, help="Arguments passed to the script as sys.argv[1:]."),
    mock: bool = typer.Option(False, "--mock", help="Answer OpenAI calls from the built-in scripted server on 127.0.0.1 (offline, no API key). Replies come from SCRIPT.mock.json/.yaml beside the script if present."),
    mock_script: Optional[Path] = typer.Option(None, "--mock-script", help="Reply script for --mock (JSON or YAML)."),
    trace_id: Optional[str] = typer.Option(None, "--trace-id", help="Use this UUID as the trace id instead of a new one."),
    name: Optional[str] = typer.Option(None, "--name", help="Name of the trace (default: the script's file name)."),
    tag: Optional[List[str]] = typer.Option(None, "--tag", help="Tag the trace: key=value (repeatable)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Don't print the summary when the script ends."),
) -> None:
    """Run SCRIPT exactly as `python SCRIPT ARGS…` would, recording every LangChain and OpenAI step.

    Example: llmtrace run --mock sample_agents/math_agent.py

    The script sees its trace id in LLMTRACE_TRACE_ID. When it ends, a summary goes to stderr.
    """
    tags = parse_tags(tag)
    if trace_id is not None:
        try:
            trace_id = str(uuid.UUID(trace_id))
        except ValueError:
            raise UserError(f"bad --trace-id {trace_id!r}: expected a UUID") from None
    from llmtrace import runner

    runner.check_script(script)
    db = _open_store()
    from llmtrace.ids import new_trace_id
    from llmtrace.redact import Redactor
    from llmtrace.store.writer import StoreWriter

    trace_id = trace_id or new_trace_id()
    if db.execute("SELECT 1 FROM traces WHERE id = ?", (trace_id,)).fetchone():
        raise UserError(f"a trace with id {trace_id} already exists")
    writer = StoreWriter(db, Redactor.from_environ())
    env: dict[str, str] = {}
    server = None
    if mock:
        from llmtrace.mock import MockServer

        server = MockServer(_find_mock_script(script, mock_script)).start()
        env = {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_BASE": server.base_url, "OPENAI_API_KEY": "llmtrace-mock-key"}
    try:
        trace, code = runner.run(runner.RunOptions(script, list(args or []), trace_id, name, tags), writer, extra_env=env)
    finally:
        if server is not None:
            server.stop()
    if not quiet:
        from llmtrace.render.summary import run_summary
        from llmtrace.store.queries import get_trace

        try:
            trace = get_trace(db, trace.id)
        except Exception:
            pass
        _stderr().print(run_summary(trace))
    raise typer.Exit(code)


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
    print(f"llmtrace mock: serving {server.base_url} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    try:
        import time

        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


@app.command("ls")
def ls(
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="How many traces to list."),
    status: Optional[str] = typer.Option(None, "--status", help="Only traces with this status: running, ok, error, interrupted, killed."),
    name: Optional[str] = typer.Option(None, "--name", help="Only traces with this name."),
    tag: Optional[List[str]] = typer.Option(None, "--tag", help="Only traces with this tag: key=value (repeatable)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON rows instead of a table."),
) -> None:
    """List recent traces, newest first.

    Example: llmtrace ls --tag env=dev --limit 5
    """
    from llmtrace.model import Status
    from llmtrace.store.queries import TraceFilter, list_traces

    if status is not None and status not in {s.value for s in Status}:
        raise UserError(f"bad --status {status!r}: use one of {', '.join(s.value for s in Status)}")
    traces = list_traces(_open_store(), TraceFilter(status=status, name=name, tags=parse_tags(tag), limit=limit))
    if as_json:
        print(json.dumps([asdict(t) for t in traces], indent=2))
        return
    if not traces:
        _stderr().print("no traces yet: record one with `llmtrace run SCRIPT`")
        return
    from llmtrace.render.tables import trace_table

    _stdout().print(trace_table(traces))


@app.command()
def show(
    trace: str = typer.Argument("last", help="Trace id, any unique prefix of it, or last / last~1 / last~2 …"),
    show_all: bool = typer.Option(False, "--all", help="Show every span, LangChain plumbing included."),
    span: Optional[str] = typer.Option(None, "--span", help="Print one span (id or unique prefix) with its request and response JSON."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole trace with spans and payloads as JSON."),
) -> None:
    """Show a trace as a tree: agent → LLM calls → tool calls.

    Example: llmtrace show last
    """
    from llmtrace.store.queries import get_spans, get_trace, resolve_trace_id

    db = _open_store()
    t = get_trace(db, resolve_trace_id(db, trace))
    spans = get_spans(db, t.id, payloads=as_json or span is not None)
    if span is not None:
        matches = [s for s in spans if s.id.startswith(span.lower())]
        if len(matches) != 1:
            raise UserError(f"{'no' if not matches else 'more than one'} span of trace {t.id[:8]} matches {span!r}")
        print(json.dumps(asdict(matches[0]), indent=2, ensure_ascii=False))
        return
    if as_json:
        print(json.dumps({"trace": asdict(t), "spans": [asdict(s) for s in spans]}, indent=2, ensure_ascii=False))
        return
    from llmtrace.render.tree import render_tree

    _stdout().print(render_tree(t, spans, show_all=show_all))


def main() -> None:
    try:
        rv = app(standalone_mode=False)
    except UserError as e:
        print(f"llmtrace: error: {e}", file=sys.stderr)
        sys.exit(int(e.code))
    except click_exc.UsageError as e:
        hint = f" (see '{e.ctx.command_path} --help')" if e.ctx is not None else ""
        print(f"llmtrace: error: {e.format_message()}{hint}", file=sys.stderr)
        sys.exit(int(ExitCode.USAGE))
    except click_exc.Abort:
        sys.exit(int(ExitCode.INTERRUPTED))
    except click_exc.ClickException as e:
        print(f"llmtrace: error: {e.format_message()}", file=sys.stderr)
        sys.exit(e.exit_code)
    except BrokenPipeError:
        sys.exit(0)
    sys.exit(rv if isinstance(rv, int) else 0)
