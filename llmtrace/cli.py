"""The `llmtrace` command line: parse arguments, call one core function, hand the result to a renderer.

Heavy modules (LangChain, openai, genai-prices) are imported only inside `run`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, List, Optional

import typer

try:  # typer ≥ 0.26 vendors click
    from typer._click import exceptions as click_exc
except ImportError:  # pragma: no cover - typer < 0.26, on click (its own dependency)
    from click import exceptions as click_exc  # type: ignore[no-redef]

from llmtrace import __version__, timespec
from llmtrace import cli_run
from llmtrace.cli_run import find_mock_script, open_cli_store, parse_tags, plain_style, stderr_console
from llmtrace.cli_values import Typer
from llmtrace.errors import ExitCode, UserError

EXIT_CODES_HELP = (
    "Exit codes: the script's own code for `run` (1 for an uncaught exception, 130 for Ctrl-C, "
    "143 for SIGTERM); 2 bad arguments or unknown trace; 3 script missing, not Python or not compiling; "
    "4 trace store cannot be opened or written; 5 OTLP endpoint unreachable or refusing."
)

app = Typer(  # typer.Typer, converting plain option values without pydantic on typer ≥ 0.29: see cli_values
    help="Record what your LangChain agents did and what it cost, in one local SQLite file.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _stdout() -> Any:
    from rich.console import Console

    # Piped output is not squeezed into 80 columns: tables stay whole for grep, files and less -S.
    wide = not sys.stdout.isatty() and not os.environ.get("COLUMNS")
    return Console(highlight=False, width=200 if wide else None, **plain_style())


def _version(value: bool) -> None:
    if value:
        print(f"llmtrace {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Record what your LangChain agents did and what it cost, in one local SQLite file."""


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
) -> None:
    """Run SCRIPT exactly as `python SCRIPT ARGS…` would, recording every LangChain and OpenAI step.

    Example: llmtrace run --mock sample_agents/math_agent.py

    The script sees its trace id in LLMTRACE_TRACE_ID. When it ends, a summary goes to stderr.
    """
    cli_run.start_run(
        script_arg, args, mock=mock, mock_script=mock_script, trace_id=trace_id, name=name, tag=tag, quiet=quiet,
        no_cache=no_cache, cache_mode=cache_mode, no_children=no_children, cache_dir=cache_dir, cache_ttl=cache_ttl,
        cache_size=cache_size, semantic_cache=semantic_cache, semantic_threshold=semantic_threshold,
        embedding_model=embedding_model, otlp=otlp, otlp_header=otlp_header, project=project, retries=retries,
        max_cost=max_cost, max_calls=max_calls, max_tokens=max_tokens, split=split,
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
    from llmtrace import runner
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
    cli_run.launch(opts, find_mock_script(Path(script_arg), mock_script) if mock else None, quiet, env, after)


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


JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]
SinceOpt = Annotated[Optional[str], typer.Option("--since", help=f"Start of the period: {timespec.HELP}.")]
UntilOpt = Annotated[Optional[str], typer.Option("--until", help="End of the period (same forms as --since).")]


def _period(since: str | None, until: str | None) -> tuple[int | None, int | None]:
    s = timespec.parse_time(since, option="--since") if since else None
    u = timespec.parse_time(until, option="--until") if until else None
    if s is not None and u is not None and u <= s:
        raise UserError(f"--until {until!r} is not after --since {since!r}")
    return s, u


def _print(renderable: Any, *, pager: bool = True, soft_wrap: bool = False) -> None:
    """Print to stdout; long output goes through a pager when stdout is a terminal, like git."""
    console = _stdout()
    if pager and console.is_terminal:
        with console.capture() as cap:
            console.print(renderable, soft_wrap=soft_wrap)
        if cap.get().count("\n") > console.height:
            os.environ.setdefault("LESS", "FRX")
            with console.pager(styles=True):
                console.print(renderable, soft_wrap=soft_wrap)
            return
    console.print(renderable, soft_wrap=soft_wrap)


def _now_us() -> int:
    return time.time_ns() // 1000


def _money(value: float | None) -> float | None:
    """A sum of float costs without its binary noise (0.0016199999999999977 → 0.00162): 12 decimals,
    10 significant digits, far finer than any price."""
    return None if value is None else float(f"{round(value, 12):.10g}")


def _trace_json(trace: Any, streams: dict[str, Any] | None = None) -> dict[str, Any]:
    """A trace for `ls --json`: its fields, with ISO-8601 UTC `start` / `end` beside start_us / end_us
    (end null while it runs), its money rounded, and its streamed calls (count, mean time to first
    token, chunks) under `streamed`."""
    out: dict[str, Any] = {}
    for key, value in asdict(trace).items():
        out[key] = value
        if key in ("start_us", "end_us"):
            out[key[:-3]] = timespec.iso_utc(value)
    totals = out["totals"]
    for key in ("cost", "cost_saved"):
        totals[key] = _money(totals[key])
    out["streamed"] = streams or {"calls": 0, "ttft_us": None, "chunks": None}
    return out


@app.command("ls")
def ls(
    since: SinceOpt = None,
    until: UntilOpt = None,
    status: Optional[str] = typer.Option(None, "--status", help="Only traces with this status: running, ok, error, interrupted, killed."),
    name: Optional[str] = typer.Option(None, "--name", help="Only traces with this name, or matching this glob: 'math*', 'agent-?.py' (case-sensitive)."),
    error: Optional[str] = typer.Option(None, "--error", help="Only traces whose error contains this text (case-insensitive), e.g. --status error --error timeout."),
    tag: Optional[List[str]] = typer.Option(None, "--tag", help="Only traces with this tag: key=value (repeatable, all must match)."),
    min_score: Optional[float] = typer.Option(None, "--min-score", help="Only traces whose average feedback score is at least this."),
    max_score: Optional[float] = typer.Option(None, "--max-score", help="Only traces whose average feedback score is at most this."),
    grep: Optional[str] = typer.Option(None, "--grep", help="Only traces whose prompts, responses, tool arguments or results, or errors hold these words (any case; the last word may be the start of one)."),
    model: Optional[str] = typer.Option(None, "--model", help="Only traces with an LLM call to this model (exact or a glob: 'gpt-4o*')."),
    min_cost: Optional[float] = typer.Option(None, "--min-cost", min=0, help="Only traces that cost at least this many dollars."),
    min_duration: Optional[str] = typer.Option(None, "--min-duration", help="Only traces that ran at least this long: 90s, 5min, 2h."),
    watch: bool = typer.Option(False, "--watch", "-w", help="Keep the list on screen, refreshed every second, until Ctrl-C (needs a terminal)."),
    run_ref: Optional[str] = typer.Option(None, "--run", metavar="ID", help="Only the traces of this `run --split` run (its id, or any of its traces' ids), with the run's own record."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, max=1_000_000_000, help="How many traces to list."),
    as_json: JsonFlag = False,
) -> None:
    """List recent traces, newest first.

    Example: llmtrace ls --since 24h --tag env=dev --status error --error timeout
    """
    from llmtrace.model import Status
    from llmtrace.store.queries import TraceFilter, get_trace, list_traces, resolve_trace_id, stream_stats

    if status is not None and status not in {s.value for s in Status}:
        raise UserError(f"bad --status {status!r}: use one of {', '.join(s.value for s in Status)}")
    s, u = _period(since, until)
    min_us = int(timespec.parse_duration(min_duration, option="--min-duration") * 1e6) if min_duration else None
    db = open_cli_store(write=False)
    run_id = None
    if run_ref is not None:
        part = get_trace(db, resolve_trace_id(db, run_ref))
        if part.run_id is None:
            raise UserError(f"trace {part.id[:8]} was not recorded with `run --split`: it is a run of its own")
        run_id = part.run_id
    f = TraceFilter(since_us=s, until_us=u, status=status, name=name, error=error, tags=parse_tags(tag),
                    grep=grep, model=model, min_cost=min_cost, min_duration_us=min_us,
                    min_score=min_score, max_score=max_score, run=run_id, limit=limit)
    if watch:
        if as_json:
            raise UserError("--watch draws the table on a terminal: for scripts, run ls --json when needed")
        _watch(db, f)
        return
    traces = list_traces(db, f)
    if as_json:
        streams = stream_stats(db, [t.id for t in traces])
        print(json.dumps([_trace_json(t, streams.get(t.id)) for t in traces], indent=2, ensure_ascii=False))
        return
    if not traces:
        filtered = any([since, until, status, name, error is not None, tag, min_score is not None, max_score is not None,
                        grep is not None, model, min_cost is not None, min_duration, run_ref])
        stderr_console().print("no traces match" if filtered else "no traces yet: record one with `llmtrace run SCRIPT`")
        return
    from llmtrace.render.tables import trace_table

    _print(trace_table(traces, _now_us()))


@app.command()
def show(
    trace: str = typer.Argument("last", help="Trace id, any unique prefix of it, or last / last~1 / last~2 …"),
    show_all: bool = typer.Option(False, "--all", help="Show every span, LangChain plumbing included, and every top-level step of a long run."),
    steps: int = typer.Option(10, "--steps", min=1, help="A trace with more than twice this many top-level steps (a script that ran an agent over many inputs) shows the first and the last this many, and counts the rest."),
    full: bool = typer.Option(False, "--full", help="Add prompts, responses, inputs and outputs (clipped to --width-limit chars each)."),
    limit: int = typer.Option(400, "--width-limit", min=20, help="With --full: characters shown per text before clipping."),
    span: Optional[str] = typer.Option(None, "--span", help="Print one span in full as JSON, with its request and response (id, prefix, or the 8-digit handle --full shows)."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole trace with spans and payloads as one JSON document."),
    traceback: bool = typer.Option(False, "--traceback", help="Print only the tracebacks, whole: of every span that failed, and of the script's uncaught exception."),
    grep: Optional[str] = typer.Option(None, "--grep", help="Show only the spans that hold these words (as `ls --grep`), with the steps above them."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Watch a running trace grow in place (default: the newest running one), open spans marked, totals running; when it ends, print it as show does."),
    timeline: bool = typer.Option(False, "--timeline", help="Draw the trace as a waterfall: one bar per shown span on a shared time axis (parallel calls side by side, time to first token, failures and cache hits marked)."),
    no_pager: bool = typer.Option(False, "--no-pager", help="Never page long output."),
) -> None:
    """Show a trace as a tree: agent → LLM calls → tool calls.

    Example: llmtrace show last --full ; llmtrace show last --traceback
    """
    from llmtrace.render.stream import print_lines, silence_stdout
    from llmtrace.store.queries import find_span, get_folded_spans, get_spans, get_trace, iter_spans, resolve_trace_id

    if sum([span is not None, as_json, traceback, grep is not None, timeline]) > 1:
        raise UserError("--span, --json, --traceback, --grep and --timeline go one at a time")
    if follow and (span is not None or as_json or traceback or grep is not None):
        raise UserError("--follow goes with the tree or --timeline, not with --span, --json, --traceback or --grep")
    db = open_cli_store(write=False)
    if follow:
        t = get_trace(db, _follow(db, None if trace == "last" else resolve_trace_id(db, trace)))
    else:
        t = get_trace(db, resolve_trace_id(db, trace))
    if traceback:
        _print_tracebacks(db, t)
        return
    if span is not None:
        print(json.dumps(asdict(find_span(db, t.id, span)), indent=2, ensure_ascii=False))
        return
    if as_json:  # the same document `llmtrace export` writes, streamed from the store span by span
        from llmtrace.export.jsondoc import write_document

        try:
            write_document(sys.stdout.write, t, iter_spans(db, t.id, payloads=True), indent=2)
            sys.stdout.write("\n")
        except BrokenPipeError:  # `llmtrace show … | head`: the reader has what it wanted
            silence_stdout()
        return
    import gc

    from llmtrace.render.tree import tree_lines

    shown = None
    if grep is not None:  # the matching spans and the steps above them, whatever their number
        from llmtrace.store.queries import matching_spans

        hits = matching_spans(db, t.id, grep)
        if not hits:
            stderr_console().print(f"no span of {t.id[:8]} holds {grep!r}")
            raise typer.Exit(1)
        every = get_spans(db, t.id)
        by_id = {x.id: x for x in every}
        keep = set()
        for sid in hits:
            while sid is not None and sid in by_id and sid not in keep:
                keep.add(sid)
                sid = by_id[sid].parent_id
        shown = [x for x in every if x.id in keep]
        stderr_console().print(f"{len(hits):,} of {len(every):,} spans hold {grep!r}")
    folded = None if show_all or shown is not None else get_folded_spans(db, t.id, steps)
    # Drawing a tree makes no garbage cycles, and the collector would walk every loaded span again at each
    # of its passes (a third of the time of `--all` on 200,000 spans): it is off until the tree is out.
    collecting = gc.isenabled()
    gc.disable()
    try:
        if timeline:
            from llmtrace.render.timeline import timeline_lines

            width = _stdout().width
            lines = (timeline_lines(t, folded.head, width, tail=folded.tail, hidden=folded.hidden) if folded is not None
                     else timeline_lines(t, get_spans(db, t.id), width, show_all=show_all))
        elif folded is not None:  # a long run: only the spans under its first and last steps are read
            lines = tree_lines(t, folded.head, tail=folded.tail, hidden=folded.hidden, full=full, limit=limit)
        else:
            lines = tree_lines(t, shown if shown is not None else get_spans(db, t.id), show_all=show_all, full=full, limit=limit)
        print_lines(_stdout(), lines, pager=not no_pager)
    except BrokenPipeError:
        silence_stdout()
    finally:
        if collecting:
            gc.enable()


def _watch(db: Any, f: Any) -> None:
    """`ls --watch`: the table redrawn every second until Ctrl-C."""
    from rich.live import Live
    from rich.text import Text

    from llmtrace.render.tables import trace_table
    from llmtrace.store.queries import list_traces

    out = _stdout()
    if not out.is_terminal:
        raise UserError("--watch needs a terminal (for scripts: llmtrace ls --json)")
    try:
        with Live(console=out, refresh_per_second=4) as live:
            while True:
                traces = list_traces(db, f)
                table = trace_table(traces, _now_us()) if traces else Text("no traces yet", style="dim")
                live.update(table)
                time.sleep(1.0)
    except KeyboardInterrupt:
        pass


def _follow(db: Any, trace_id: str | None) -> str:
    """`show --follow`: redraw the trace from the store (and its open spans) until it is no longer
    running; returns its id. Without a terminal, just waits for the end."""
    import time

    from llmtrace.inflight import read_in_flight
    from llmtrace.model import Status
    from llmtrace.store.queries import get_spans, get_trace, newest_running

    if trace_id is None:
        trace_id = newest_running(db)
        if trace_id is None:
            raise UserError("no trace is running: start one with `llmtrace run SCRIPT`, or give a trace id")
    home = Path(db.execute("PRAGMA database_list").fetchone()[2]).parent
    out = _stdout()
    if not out.is_terminal:
        while get_trace(db, trace_id).status == Status.RUNNING.value:
            time.sleep(0.25)
        return trace_id
    from rich.live import Live

    from llmtrace.render.live import follow_frame

    with Live(console=out, refresh_per_second=8, transient=True) as live:
        while True:
            t = get_trace(db, trace_id)
            spans = get_spans(db, trace_id)
            flying: list[Any] = []
            if t.status == Status.RUNNING.value:
                have = {s.id for s in spans}
                flying = [s for s in read_in_flight(home, t.id, t.run_id) if s.id not in have]
            live.update(follow_frame(t, spans + flying, len(flying), out.height))
            if t.status != Status.RUNNING.value:
                return trace_id
            time.sleep(0.2)


def _print_tracebacks(db: Any, trace: Any) -> None:
    """`show --traceback`: each failed span's traceback, in start order, then the script's, each whole
    under a header line; plain text (a traceback's brackets are not markup)."""
    from llmtrace.render.stream import silence_stdout
    from llmtrace.render.tree import span_ref
    from llmtrace.store.queries import spans_with_traceback

    blocks = [(f"── span {s.name} ({span_ref(s.id)}) ──", s.metadata["traceback"]) for s in spans_with_traceback(db, trace.id)]
    if trace.traceback:
        blocks.append(("── script ──", trace.traceback))
    if not blocks:
        stderr_console().print("no traceback in this trace")
        return
    try:
        sys.stdout.write("\n".join(f"{header}\n{str(body).rstrip()}\n" for header, body in blocks))
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()


@app.command()
def cost(
    since: SinceOpt = None,
    until: UntilOpt = None,
    by: str = typer.Option("model", "--by", help="Group by: model, day, trace, run (a `run --split` run's traces together), name, or tag:KEY."),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", min=0, max=1_000_000_000, help="With --by trace or run: the costliest this many (default 20; 0 for all)."),
    as_json: JsonFlag = False,
) -> None:
    """What LLM calls cost, grouped by model, day, trace, run, trace name or a tag.

    Example: llmtrace cost --since this-month --by tag:team
    """
    from llmtrace.store.queries import CostRow, cost_report

    if limit is not None and by not in ("trace", "run"):
        raise UserError("--limit goes with --by trace or --by run")
    s, u = _period(since, until)
    rows = cost_report(open_cli_store(write=False), s, u, by)
    rest: list[Any] = []
    if by in ("trace", "run"):
        keep = 20 if limit is None else limit
        if keep and len(rows) > keep:
            rows, rest = rows[:keep], rows[keep:]
    more = f"… and {len(rest):,} more {by}{'s' if len(rest) != 1 else ''} (--limit 0 for all)" if rest else None
    if as_json:
        out = [{**asdict(r), "cost": _money(r.cost), "saved": _money(r.saved),
                "ttft_us": None if r.ttft_us is None else round(r.ttft_us)} for r in rows]
        print(json.dumps({"since_us": s, "until_us": u, "by": by, "rows": out, "more": len(rest)}, indent=2))
        if more:
            stderr_console().print(more)
        return
    from llmtrace.render import fmt
    from llmtrace.render.tables import cost_table

    period = f"since {fmt.local_time(s)[:16]}" if s is not None else "all time"
    if u is not None:
        period += f" until {fmt.local_time(u)[:16]}"
    err = stderr_console()
    if not rows:
        err.print(f"no LLM calls {period}")
        return
    err.print(f"LLM cost {period}, by {by}", style="bold")
    shown = rows
    if rest:  # the traces left out, summed in one row: the total stays the total of the period
        streamed = sum(r.streamed_calls for r in rest)
        ttft = sum((r.ttft_us or 0) * r.streamed_calls for r in rest) / streamed if streamed else None
        shown = rows + [CostRow("…", f"and {len(rest):,} more", *(sum(getattr(r, f) for r in rest) for f in (
            "calls", "input_tokens", "output_tokens", "cost", "cached_calls", "saved", "unpriced_calls")), streamed, ttft)]
    _print(cost_table(shown, by))
    if more:
        err.print(more)
    unpriced = sum(r.unpriced_calls for r in rows + rest)
    if unpriced:
        err.print(f"{fmt.plural(unpriced, 'call')} could not be priced (unknown model): not included in the cost. "
                  "Add prices in $LLMTRACE_HOME/prices.json.", style="yellow")


@app.command()
def diff(
    trace_a: str = typer.Argument(..., metavar="A", help="The first trace: id, prefix, or last / last~1 …"),
    trace_b: str = typer.Argument("last", metavar="B", help="The second trace (default: last)."),
    context: int = typer.Option(1, "--context", "-U", min=0, help="Unchanged lines shown around each change."),
    exit_code: bool = typer.Option(False, "--exit-code", help="Exit 1 when a step differs (as git diff --exit-code), 0 when none does."),
    as_json: JsonFlag = False,
) -> None:
    """Compare two traces step by step: LLM and tool calls aligned (insertions and deletions shown as
    such), what changed in each — prompt messages, response or tool calls, parameters, tool arguments
    and results — as a unified diff, and the totals' deltas. Unchanged steps take one line.

    Example: llmtrace diff last~1 last
    """
    from llmtrace.compare import compare, totals_delta
    from llmtrace.store.queries import get_spans, get_trace, resolve_trace_id

    db = open_cli_store(write=False)
    a = get_trace(db, resolve_trace_id(db, trace_a))
    b = get_trace(db, resolve_trace_id(db, trace_b))
    changes = compare(get_spans(db, a.id), get_spans(db, b.id), context)
    deltas = totals_delta(a, b)
    differs = any(c.op != "same" for c in changes)
    if as_json:
        def side(step: Any) -> Any:
            return None if step is None else {"span_id": step.span.id, "kind": step.span.kind, "name": step.span.name,
                                              "what": step.key}
        for d in deltas.values():
            if isinstance(d["delta"], float):
                d["a"], d["b"], d["delta"] = _money(d["a"]), _money(d["b"]), _money(d["delta"])
        print(json.dumps({"a": a.id, "b": b.id, "totals": deltas, "differs": differs,
                          "steps": [{"op": c.op, "a": side(c.a), "b": side(c.b), "changes": c.diffs} for c in changes]},
                         indent=2, ensure_ascii=False))
    else:
        from llmtrace.render.diff import diff_lines
        from llmtrace.render.stream import print_lines, silence_stdout

        try:
            print_lines(_stdout(), diff_lines(a, b, changes, deltas))
        except BrokenPipeError:
            silence_stdout()
    if exit_code and differs:
        raise typer.Exit(1)


@app.command()
def view(
    trace: str = typer.Argument("last", help="Trace id, any unique prefix of it, or last / last~1 / last~2 …"),
    output: Optional[str] = typer.Option(None, "--output", "-o", metavar="FILE", help="Write the page here (default: llmtrace-<id>.html in the current folder; - for stdout)."),
    open_page: bool = typer.Option(False, "--open", help="Open the page in your web browser, when this machine has one."),
    steps: int = typer.Option(10, "--steps", min=1, help="As in show: a trace with more than twice this many top-level steps keeps the first and the last this many (the rest are counted)."),
    every_step: bool = typer.Option(False, "--all", help="Keep every top-level step of a long run. (LangChain plumbing is always in the page: its \"all spans\" box shows it.)"),
) -> None:
    """Write a trace as one self-contained HTML page: the tree, a waterfall, each span's messages, tool
    arguments and results, tokens, cost and raw JSON, and search.

    Nothing is loaded from the network: it opens offline and travels as an e-mail attachment. It holds
    the prompts and answers as the store does (secrets redacted), so the file is owner-only (0600).

    Example: llmtrace view last --open ; llmtrace view 3f9a2c1e -o bug-report.html
    """
    from llmtrace.render.html import render_html
    from llmtrace.store.queries import get_folded_spans, get_spans, get_trace, load_payloads, resolve_trace_id

    if open_page and output == "-":
        raise UserError("--open needs a file: drop -o -")
    db = open_cli_store(write=False)
    t = get_trace(db, resolve_trace_id(db, trace))
    folded = None if every_step else get_folded_spans(db, t.id, steps)
    if folded is None:
        page = render_html(t, get_spans(db, t.id, payloads=True))
    else:
        load_payloads(db, folded.head + folded.tail)
        page = render_html(t, folded.head, tail=folded.tail, hidden=folded.hidden)
    if output == "-":
        sys.stdout.buffer.write(page.encode("utf-8"))
        sys.stdout.flush()
        return
    path = Path(output or f"llmtrace-{t.id[:8]}.html")
    with _private_file(path) as f:
        f.write(page)
    stderr_console().print(f"wrote {path} ({len(page.encode('utf-8')) / 1024:,.0f} kB)", markup=False)
    if open_page:
        import webbrowser

        try:  # a browser to open pages on: a desktop session, or one named in $BROWSER
            browser = webbrowser.get()
            usable = os.environ.get("BROWSER") or sys.platform in ("darwin", "win32") or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
        except webbrowser.Error:
            browser, usable = None, False
        if not (usable and browser is not None and browser.open(path.resolve().as_uri())):
            stderr_console().print(f"no web browser to open it here: open {path} in one", markup=False)


@app.command()
def tag(
    trace: str = typer.Argument(..., help="Trace id, unique prefix, or last."),
    tags: Optional[List[str]] = typer.Argument(None, help="key=value pairs to set."),
    remove: Optional[List[str]] = typer.Option(None, "--remove", help="Remove the tag with this key (repeatable)."),
) -> None:
    """Add, change or remove tags on a recorded trace.

    Example: llmtrace tag last env=prod ticket=ABC-12
    """
    from llmtrace.store import edit
    from llmtrace.store.queries import resolve_trace_id

    parsed = parse_tags(tags)
    if not parsed and not remove:
        raise UserError("nothing to do: give key=value tags or --remove KEY")
    db = open_cli_store()
    tid = resolve_trace_id(db, trace)
    keys = list(dict.fromkeys(remove or []))
    edit.retag(db, tid, parsed, keys)
    stderr_console().print(f"tagged {tid[:8]}: " + " ".join([*(f"{k}={v}" for k, v in parsed.items()), *(f"-{k}" for k in keys)]))


@app.command()
def feedback(
    trace: str = typer.Argument(..., help="Trace id, unique prefix, or last."),
    score: int = typer.Option(..., "--score", min=-10, max=10, help="From -10 (bad) to 10 (good)."),
    comment: Optional[str] = typer.Option(None, "--comment", help="A note to keep with the score."),
) -> None:
    """Record a score (and a comment) for a trace; several per trace are kept, each timestamped.

    Example: llmtrace feedback last --score 8 --comment "right answer, slow"
    """
    from llmtrace.store import edit
    from llmtrace.store.queries import resolve_trace_id

    db = open_cli_store()
    tid = resolve_trace_id(db, trace)
    edit.add_feedback(db, tid, score, comment)
    stderr_console().print(f"feedback {score:+d} recorded for {tid[:8]}")


@app.command()
def rm(traces: List[str] = typer.Argument(..., help="Trace ids, prefixes, or last.")) -> None:
    """Delete traces (their spans, payloads, tags and feedback).

    Example: llmtrace rm 3f9a2c1e last~1
    """
    from llmtrace.store import edit
    from llmtrace.store.queries import resolve_trace_id

    db = open_cli_store()
    ids = list(dict.fromkeys(resolve_trace_id(db, t) for t in traces))
    n = edit.delete_traces(db, ids)
    stderr_console().print(f"deleted {n} trace{'s' if n != 1 else ''}")


@app.command()
def prune(
    older_than: str = typer.Option(..., "--older-than", help="Delete traces that started before this long ago (30d, 12h, 2w, 3mo, 90min; `m` alone is refused: minutes or months?) or this date."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Don't ask for confirmation."),
) -> None:
    """Delete old traces; says how many and asks first unless --yes. Running traces are kept.

    Example: llmtrace prune --older-than 30d
    """
    from llmtrace.render import fmt
    from llmtrace.store import edit

    cutoff = timespec.parse_time(older_than, option="--older-than", bare_m=False)
    db = open_cli_store()
    c = edit.count_prunable(db, cutoff)
    if c.traces == 0:
        stderr_console().print(f"no traces started before {fmt.local_time(cutoff)[:16]}")
        return
    what = (f"would delete {fmt.plural(c.traces, 'trace')} ({fmt.plural(c.spans, 'span')}), "
            f"oldest {fmt.local_time(c.oldest_us)[:10]}, newest {fmt.local_time(c.newest_us)[:10]}")
    if not yes and not sys.stdin.isatty():
        raise UserError(f"{what}: pass --yes to confirm when not at a terminal")
    stderr_console().print(what)
    if not yes:
        if not typer.confirm(f"Delete {fmt.plural(c.traces, 'trace')} started before {fmt.local_time(cutoff)[:16]}?", default=False, err=True):
            raise typer.Exit(1)
    deleted = edit.prune(db, cutoff)
    stderr_console().print(f"deleted {deleted} trace{'s' if deleted != 1 else ''}")


def _select_traces(db: Any, traces: list[str] | None, since: str | None, until: str | None) -> list[str]:
    from llmtrace.store.queries import TraceFilter, list_traces, resolve_trace_id

    if not traces and not since and not until:
        raise UserError("say which traces: give trace ids (or last), or --since / --until")
    ids = [resolve_trace_id(db, t) for t in traces or []]
    if since or until:
        s, u = _period(since, until)
        ids += [t.id for t in reversed(list_traces(db, TraceFilter(since_us=s, until_us=u, limit=None)))]
    return list(dict.fromkeys(ids))


@app.command()
def export(
    traces: Optional[List[str]] = typer.Argument(None, help="Trace ids, prefixes, or last."),
    since: SinceOpt = None,
    until: UntilOpt = None,
    fmt: str = typer.Option("json", "--format", help="json (one document, or an array of them), jsonl (a document per line), or otlp."),
    otlp: Optional[str] = typer.Option(None, "--otlp", help="Send over OTLP/HTTP protobuf to this endpoint (implies --format otlp; default endpoint: OTEL_EXPORTER_OTLP_ENDPOINT)."),
    otlp_header: Optional[List[str]] = typer.Option(None, "--otlp-header", metavar="NAME=VALUE", help="Send this header with the OTLP requests (repeatable; added to OTEL_EXPORTER_OTLP_HEADERS). MLflow needs x-mlflow-experiment-id=ID."),
    project: Optional[str] = typer.Option(None, "--project", help="Project name for OTLP backends (default: each trace's `project` tag, LLMTRACE_PROJECT, or the script's name)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the JSON here instead of stdout."),
) -> None:
    """Export traces as self-contained JSON documents, or send them to an OpenTelemetry collector.

    Example: llmtrace export last -o bug-report.json ; llmtrace export --since 7d --otlp http://localhost:4318
    """
    from llmtrace.export import jsondoc
    from llmtrace.store.queries import get_spans, get_trace, iter_spans

    if otlp:
        fmt = "otlp"
    if fmt not in ("json", "jsonl", "otlp"):
        raise UserError(f"bad --format {fmt!r}: use json, jsonl or otlp")
    if (otlp_header or project) and fmt != "otlp":
        raise UserError("--otlp-header and --project go with an OTLP export (--otlp URL or --format otlp)")
    db = open_cli_store(write=False)
    ids = _select_traces(db, traces, since, until)
    found = [get_trace(db, i) for i in ids]  # every trace row first (small): a bad id fails before anything is written
    if fmt == "otlp":
        from llmtrace.export import otlp as otlp_mod

        url = otlp_mod.endpoint(otlp)
        if url is None:
            raise UserError("no OTLP endpoint: pass --otlp URL or set OTEL_EXPORTER_OTLP_ENDPOINT")
        sent_headers = otlp_mod.headers(otlp_header)
        sent = 0
        for start in range(0, len(found), 50):  # a request per 50 traces keeps bodies modest
            chunk = [(t, get_spans(db, t.id, payloads=True)) for t in found[start : start + 50]]
            request = otlp_mod.build_request([(t, s, otlp_mod.ends_of(s)) for t, s in chunk], project)
            otlp_mod.post(url, request, extra_headers=sent_headers)
            sent += sum(len(s) + 1 for _, s in chunk)
        stderr_console().print(f"sent {len(found)} trace{'s' if len(found) != 1 else ''} ({sent:,} spans) to {url}")
        return
    # Spans go out as they are read from the store: a 200,000-span trace is never held whole.
    out = _private_file(output) if output else sys.stdout
    try:
        if fmt == "jsonl":
            for t in found:
                jsondoc.write_document(out.write, t, iter_spans(db, t.id, payloads=True))
                out.write("\n")
        elif len(found) == 1:
            jsondoc.write_document(out.write, found[0], iter_spans(db, found[0].id, payloads=True), indent=2)
            out.write("\n")
        else:  # an array of documents, as json.dumps(list, indent=2) lays it out
            out.write("[" if found else "[]\n")
            for i, t in enumerate(found):
                out.write(("," if i else "") + "\n  ")
                jsondoc.write_document(out.write, t, iter_spans(db, t.id, payloads=True), indent=2, level=1)
            if found:
                out.write("\n]\n")
    except BrokenPipeError:  # `llmtrace export … | head`: the reader has what it wanted
        from llmtrace.render.stream import silence_stdout

        silence_stdout()
        return
    finally:
        if output:
            out.close()
    if output:
        stderr_console().print(f"wrote {len(found)} trace{'s' if len(found) != 1 else ''} to {output}")


def _private_file(path: Path) -> Any:
    """`path` opened for writing text, owner-only (0600) like the store it comes from, whether it is new or not."""
    import stat

    try:
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror}") from None
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):  # not /dev/stdout or a named pipe
            os.fchmod(fd, 0o600)
    except OSError:
        pass
    return os.fdopen(fd, "w", encoding="utf-8")


@app.command("import")
def import_(
    file: str = typer.Argument(..., help="A file written by `llmtrace export` (json or jsonl), or - for stdin."),
    replace: bool = typer.Option(False, "--replace", help="Overwrite traces that are already in the store."),
    skip_existing: bool = typer.Option(False, "--skip-existing", help="Leave out traces that are already in the store and import the rest."),
) -> None:
    """Load exported traces into this store (for example one attached to a bug report).

    All or nothing: if a trace of the file is already here, none is imported (unless --replace or --skip-existing).

    Example: llmtrace import bug-report.json && llmtrace show last
    """
    from llmtrace.export import jsondoc
    from llmtrace.redact import Redactor

    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except OSError as e:
        raise UserError(f"cannot read {file}: {e.strerror}") from None
    try:
        data = json.loads(text)
        docs = data if isinstance(data, list) else [data]
    except ValueError:
        try:
            docs = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as e:
            raise UserError(f"{file} is not JSON or JSON lines: {e}") from None
    if replace and skip_existing:
        raise UserError("--replace and --skip-existing go one at a time")
    items = [jsondoc.from_document(d) for d in docs]
    ids = [t.id for t, _ in items]
    seen: set[str] = set()
    for tid in ids:
        if tid in seen:
            raise UserError(f"trace {tid} is in {file} more than once")
        seen.add(tid)
    db = open_cli_store()
    # Every id is checked before anything is written: a file is imported whole, or not at all.
    here = set() if replace else jsondoc.existing_ids(db, ids)
    if here and not skip_existing:
        first = next(i for i in ids if i in here)
        if len(ids) == 1:
            raise UserError(f"trace {first} is already in this store (use --replace to overwrite it)")
        raise UserError(f"{len(here):,} of the {len(ids):,} traces are already in this store, the first {first}: "
                        "nothing imported (--skip-existing imports the others, --replace overwrites them)")
    new = [(t, spans) for t, spans in items if t.id not in here]
    for trace, spans in new:
        jsondoc.import_trace(db, trace, spans, Redactor.from_environ(), replace=replace)
    from llmtrace.render import fmt

    done = f"imported {fmt.plural(len(new), 'trace')}" + (f" ({new[0][0].id[:8]})" if len(new) == 1 else "")
    stderr_console().print(done + (f", skipped {len(here):,} already here" if here else ""))


cache_app = Typer(help="Inspect or clear the response cache.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")
CacheDirOpt = Annotated[Optional[Path], typer.Option("--cache-dir", help="The cache folder (default: LLMTRACE_HOME/cache).")]


def _cache_dir(path: Path | None) -> Path:
    from llmtrace.home import home

    return path or home() / "cache"


@cache_app.command("stats")
def cache_stats(cache_dir: CacheDirOpt = None, as_json: JsonFlag = False) -> None:
    """Entries and size of the response cache, and what its hits have saved.

    Example: llmtrace cache stats
    """
    from llmtrace.capture import cache as rc

    directory = _cache_dir(cache_dir)
    entries = size = 0
    if directory.exists():
        try:
            entries, size = rc.stats(directory)
        except Exception as e:
            raise UserError(f"cannot read the cache at {directory}: {e}", ExitCode.STORE) from None
    db = open_cli_store()
    hits, saved = db.execute("SELECT count(*), COALESCE(SUM(cost_saved), 0) FROM spans WHERE cache_hit IS NOT NULL").fetchone()
    data = {"directory": str(directory), "entries": entries, "bytes": size, "hits": hits, "saved": saved}
    if as_json:
        print(json.dumps(data, indent=2))
        return
    from llmtrace.render import fmt

    _stdout().print(
        f"cache   {directory}\nentries {entries:,}\nsize    {size / 1048576:,.1f} MiB\n"
        f"hits    {hits:,} recorded, saving {fmt.money(saved)}"
    )


@cache_app.command("clear")
def cache_clear(
    older_than: Optional[str] = typer.Option(None, "--older-than", help="Only entries stored more than this long ago (30m, 12h, 7d)."),
    cache_dir: CacheDirOpt = None,
) -> None:
    """Delete cached responses (all, or those older than --older-than).

    Example: llmtrace cache clear --older-than 7d
    """
    from llmtrace.capture import cache as rc

    age = timespec.parse_duration(older_than, option="--older-than") if older_than else None
    directory = _cache_dir(cache_dir)
    if not directory.exists():
        stderr_console().print("the cache is empty")
        return
    n = rc.clear(directory, age)
    stderr_console().print(f"removed {n:,} cached response{'s' if n != 1 else ''}")


def main() -> None:
    cli_run.guarded(_main)


def _main() -> None:
    try:
        rv = app(standalone_mode=False)
    except click_exc.UsageError as e:
        hint = f" (see '{e.ctx.command_path} --help')" if e.ctx is not None else ""
        print(f"llmtrace: error: {e.format_message()}{hint}", file=sys.stderr)
        sys.exit(int(ExitCode.USAGE))
    except typer.Abort:  # typer ≥ 0.26's vendored click keeps Abort in typer.exceptions, not with the others
        sys.exit(int(ExitCode.INTERRUPTED))
    except click_exc.ClickException as e:
        print(f"llmtrace: error: {e.format_message()}", file=sys.stderr)
        sys.exit(e.exit_code)
    sys.exit(rv if isinstance(rv, int) else 0)
