"""`llmtrace ls` and `show`: list traces and draw one, also while it runs (`ls --watch`, `show --follow`)."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, List, Optional

import typer

import llmtrace.timespec as timespec
from llmtrace.cli.app import JsonFlag, SinceOpt, UntilOpt, app
from llmtrace.cli.common import (
    now_us,
    open_cli_store,
    page,
    parse_tags,
    period,
    stderr_console,
    stdout_console,
    trace_json,
)
from llmtrace.errors import UserError


@app.command("ls")
def ls(
    since: SinceOpt = None,
    until: UntilOpt = None,
    status: Optional[str] = typer.Option(None, "--status", help="Only traces with this status: running, ok, error, interrupted, over-budget (a budget stopped it), killed."),
    name: Optional[str] = typer.Option(None, "--name", help="Only traces with this name (a script's with or without its .py; a split run's runnable: 'answer' finds 'answer: n=7'), or matching this glob: 'math*', 'agent-?.py' (case-sensitive)."),
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
    from llmtrace.store.queries import (
        TraceFilter,
        get_trace,
        resolve_trace_id,
        stream_stats,
    )

    if status is not None and status not in {s.value for s in Status}:
        raise UserError(f"bad --status {status!r}: use one of {', '.join(s.value for s in Status)}")
    s, u = period(since, until)
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
    traces = _listed(db, f)
    if as_json:
        streams = stream_stats(db, [t.id for t in traces])
        print(json.dumps([trace_json(t, streams.get(t.id)) for t in traces], indent=2, ensure_ascii=False))
        return
    if not traces:
        filtered = any([since, until, status, name, error is not None, tag, min_score is not None, max_score is not None,
                        grep is not None, model, min_cost is not None, min_duration, run_ref])
        stderr_console().print("no traces match" if filtered else "no traces yet: record one with `llmtrace run SCRIPT`")
        return
    from llmtrace.render.tables import trace_table

    page(trace_table(traces, now_us()))


@app.command()
def show(
    trace: str = typer.Argument("last", help="Trace id, any unique prefix of it, or last / last~1 / last~2 …"),
    show_all: bool = typer.Option(False, "--all", help="Show every span, LangChain plumbing included, and every top-level step of a long run."),
    all_steps: bool = typer.Option(False, "--all-steps", help="Show every top-level step of a long run (its plumbing still folded)."),
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
    from llmtrace.store.queries import (
        find_span,
        get_folded_spans,
        get_spans,
        get_trace,
        iter_spans,
        resolve_trace_id,
    )

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
    folded = None if show_all or all_steps or shown is not None else get_folded_spans(db, t.id, steps)
    # Drawing a tree makes no garbage cycles, and the collector would walk every loaded span again at each
    # of its passes (a third of the time of `--all` on 200,000 spans): it is off until the tree is out.
    collecting = gc.isenabled()
    gc.disable()
    # Lines fit the terminal (cropped with …, never wrapped through the tree's guides); piped without
    # COLUMNS, stdout_console is 200 wide and long lines are whole for grep and less -S.
    width = stdout_console().width
    try:
        if timeline:
            from llmtrace.render.timeline import timeline_lines

            lines = (timeline_lines(t, folded.head, width, tail=folded.tail, hidden=folded.hidden) if folded is not None
                     else timeline_lines(t, get_spans(db, t.id), width, show_all=show_all))
        elif folded is not None:  # a long run: only the spans under its first and last steps are read
            lines = tree_lines(t, folded.head, tail=folded.tail, hidden=folded.hidden, full=full, limit=limit, width=width)
        else:
            lines = tree_lines(t, shown if shown is not None else get_spans(db, t.id), show_all=show_all, full=full,
                               limit=limit, width=width)
        print_lines(stdout_console(), lines, pager=not no_pager)
    except BrokenPipeError:
        silence_stdout()
    finally:
        if collecting:
            gc.enable()


@app.command("thread")
def thread(
    thread_id: str = typer.Argument(..., metavar="ID", help="The conversation: a LangGraph thread_id (or a session_id / conversation_id the app puts in LangChain metadata)."),
    as_json: JsonFlag = False,
) -> None:
    """One conversation across traces: its turns in order (the traces tagged with the thread's id from
    LangChain metadata or LangGraph's configurable; with `run --split`, each invocation is a turn of its
    own), with their totals.

    Example: llmtrace thread t-1 ; llmtrace thread t-1 --json
    """
    from llmtrace.model import Totals
    from llmtrace.store.queries import THREAD_KEYS, thread_traces

    db = open_cli_store(write=False)
    turns = thread_traces(db, thread_id)
    if not turns:
        raise UserError(f"no traces of thread {thread_id!r}: none is tagged {', '.join(THREAD_KEYS)} = {thread_id!r}")
    total = Totals()
    for t in turns:
        for key, value in vars(t.totals).items():
            setattr(total, key, getattr(total, key) + value)
    if as_json:
        print(json.dumps({"thread": thread_id, "turns": [trace_json(t) for t in turns], "totals": asdict(total)},
                         indent=2, ensure_ascii=False))
        return
    from rich.text import Text

    from llmtrace.render import fmt
    from llmtrace.render.tables import turn_lines

    paused = sum(t.status == "paused" for t in turns)
    out = stdout_console()
    line = Text.assemble(("thread ", "bold"), (thread_id, "bold cyan"),
                         f"  {fmt.plural(len(turns), 'turn')} · {fmt.plural(total.llm_calls, 'LLM call')}"
                         f" · {fmt.count(total.input_tokens)} in / {fmt.count(total.output_tokens)} out tokens"
                         f" · {fmt.money(total.cost, total.unpriced_calls)}" + (f" · {paused} paused" if paused else ""))
    out.print(fmt.clean(line))
    for turn in turn_lines(turns, out.width):
        out.print(fmt.clean(turn), soft_wrap=True)


def _listed(db: Any, f: Any) -> list[Any]:
    """The traces `f` selects; `--name math_agent` also selects those named `math_agent.py` (a script's
    trace is named after its file), newest first as ever."""
    from dataclasses import replace

    from llmtrace.store.queries import list_traces

    traces = list_traces(db, f)
    if not f.name or f.name.endswith(".py") or any(c in f.name for c in "*?["):
        return traces
    scripts = list_traces(db, replace(f, name=f.name + ".py"))
    merged = sorted([*traces, *scripts], key=lambda t: (t.start_us, t.id), reverse=True)
    return merged[: f.limit] if f.limit is not None else merged


def _watch(db: Any, f: Any) -> None:
    """`ls --watch`: the table redrawn every second until Ctrl-C."""
    from rich.live import Live
    from rich.text import Text

    from llmtrace.render.tables import trace_table
    out = stdout_console()
    if not out.is_terminal:
        raise UserError("--watch needs a terminal (for scripts: llmtrace ls --json)")
    try:
        with Live(console=out, refresh_per_second=4) as live:
            while True:
                traces = _listed(db, f)
                table = trace_table(traces, now_us()) if traces else Text("no traces yet", style="dim")
                live.update(table)
                time.sleep(1.0)
    except KeyboardInterrupt:
        pass


def _follow(db: Any, trace_id: str | None) -> str:
    """`show --follow`: redraw the trace from the store (and its open spans) until it is no longer
    running; returns its id. Without a terminal, just waits for the end."""
    import time

    from llmtrace.core.inflight import read_in_flight
    from llmtrace.model import Status
    from llmtrace.store.queries import get_spans, get_trace, newest_running, run_view

    if trace_id is None:
        trace_id = newest_running(db)
        if trace_id is None:
            raise UserError("no trace is running: start one with `llmtrace run SCRIPT`, or give a trace id")
    home = Path(db.execute("PRAGMA database_list").fetchone()[2]).parent
    out = stdout_console()
    if not out.is_terminal:
        while get_trace(db, trace_id).status == Status.RUNNING.value:
            time.sleep(0.25)
        return trace_id
    from rich.live import Live

    from llmtrace.render.live import follow_frame

    with Live(console=out, refresh_per_second=8, transient=True) as live:
        while True:
            t = get_trace(db, trace_id)
            if t.run_id == t.id:  # a split run: its traces as they come
                t.totals, spans = run_view(db, t.id)
            else:
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
        from llmtrace.render.fmt import visible  # a traceback quotes what the model or a tool said

        sys.stdout.write(visible("\n".join(f"{header}\n{str(body).rstrip()}\n" for header, body in blocks)))
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()
