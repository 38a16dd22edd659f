"""`llmtrace tag`, `feedback`, `rm` and `prune`: change or delete recorded traces."""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

import llmtrace.timespec as timespec
from llmtrace.cli.app import app
from llmtrace.cli.common import (
    open_cli_store,
    parse_tags,
    stderr_console,
)
from llmtrace.errors import UserError


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
    stderr_console().print(f"tagged {tid[:8]}: " + " ".join([*(f"{k}={v}" for k, v in parsed.items()), *(f"-{k}" for k in keys)]), markup=False)


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
    older_than: str = typer.Option(..., "--older-than", help="Delete traces that started before this long ago (30d, 12h, 2w, 30m = 30 minutes, 3mo = 3 months) or this date."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Don't ask for confirmation."),
) -> None:
    """Delete old traces; says how many and asks first unless --yes. Running traces are kept.

    Example: llmtrace prune --older-than 30d
    """
    from llmtrace.render import fmt
    from llmtrace.store import edit

    cutoff = timespec.parse_time(older_than, option="--older-than")
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
