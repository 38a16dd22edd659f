"""`llmtrace cost`, `diff` and `view`: what calls cost, two traces side by side, a trace as an HTML page."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, List, Optional

import typer

from llmtrace.cli.app import JsonFlag, SinceOpt, UntilOpt, app
from llmtrace.cli.common import (
    money,
    open_cli_store,
    page,
    period,
    private_file,
    stderr_console,
    stdout_console,
)
from llmtrace.errors import UserError


@app.command()
def cost(
    since: SinceOpt = None,
    until: UntilOpt = None,
    by: str = typer.Option("model", "--by", help="Group by: model, day, trace, run (a `run --split` run's traces together), name, or tag:KEY."),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", min=0, max=1_000_000_000, help="With --by trace or run: the costliest this many (default 20; 0 for all)."),
    include_mock: bool = typer.Option(False, "--include-mock", help="Count `run --mock` runs too (left out by default: the scripted server's answers cost nothing)."),
    as_json: JsonFlag = False,
) -> None:
    """What LLM calls cost, grouped by model, day, trace, run, trace name or a tag. Runs made with
    `run --mock` are left out unless --include-mock.

    Example: llmtrace cost --since this-month --by tag:team
    """
    from llmtrace.store.queries import CostRow, cost_report, mock_calls

    if limit is not None and by not in ("trace", "run"):
        raise UserError("--limit goes with --by trace or --by run")
    s, u = period(since, until)
    db = open_cli_store(write=False)
    rows = cost_report(db, s, u, by, include_mock=include_mock)
    mocked = 0 if include_mock else mock_calls(db, s, u)
    left_out = f"{mocked:,} call{'s' if mocked != 1 else ''} of --mock runs left out (--include-mock to count them)" if mocked else None
    rest: list[Any] = []
    if by in ("trace", "run"):
        keep = 20 if limit is None else limit
        if keep and len(rows) > keep:
            rows, rest = rows[:keep], rows[keep:]
    more = f"… and {len(rest):,} more {by}{'s' if len(rest) != 1 else ''} (--limit 0 for all)" if rest else None
    if as_json:
        out = [{**asdict(r), "cost": money(r.cost), "saved": money(r.saved),
                "ttft_us": None if r.ttft_us is None else round(r.ttft_us)} for r in rows]
        print(json.dumps({"since_us": s, "until_us": u, "by": by, "rows": out, "more": len(rest), "mock_calls_left_out": mocked},
                         indent=2))
        for line in (more, left_out):
            if line:
                stderr_console().print(line)
        return
    from llmtrace.render import fmt
    from llmtrace.render.tables import cost_table

    when = f"since {fmt.local_time(s)[:16]}" if s is not None else "all time"
    if u is not None:
        when += f" until {fmt.local_time(u)[:16]}"
    err = stderr_console()
    if not rows:
        err.print(f"no LLM calls {when}" + (f" ({left_out})" if left_out else ""))
        return
    err.print(f"LLM cost {when}, by {by}", style="bold")
    shown = rows
    if rest:  # the traces left out, summed in one row: the total stays the total of the period
        streamed = sum(r.streamed_calls for r in rest)
        ttft = sum((r.ttft_us or 0) * r.streamed_calls for r in rest) / streamed if streamed else None
        shown = rows + [CostRow("…", f"and {len(rest):,} more", *(sum(getattr(r, f) for r in rest) for f in (
            "calls", "input_tokens", "output_tokens", "cost", "cached_calls", "saved", "unpriced_calls")), streamed, ttft)]
    page(cost_table(shown, by))
    for line in (more, left_out):
        if line:
            err.print(line)
    unpriced = sum(r.unpriced_calls for r in rows + rest)
    if unpriced:
        err.print(f"{fmt.plural(unpriced, 'call')} could not be priced (unknown model): not included in the cost. "
                  "Add prices in $LLMTRACE_HOME/prices.json, then `llmtrace reprice`.", style="yellow")


@app.command()
def reprice(
    traces: Optional[List[str]] = typer.Argument(None, metavar="[TRACES]...", help="Traces to reprice: ids, prefixes, last / last~N (default: every trace in the period)."),
    since: SinceOpt = None,
    until: UntilOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Compute stored calls' costs again from the prices known now (genai-prices and prices.json), and
    the totals of their traces: after adding a model to $LLMTRACE_HOME/prices.json, its earlier calls
    are priced. Says how many calls changed and names the models still unpriced.

    Example: llmtrace reprice --since this-month ; llmtrace reprice last
    """
    import llmtrace.pricing as pricing
    from llmtrace.store.queries import resolve_trace_id
    from llmtrace.store.reprice import reprice as reprice_calls

    if traces and (since or until):
        raise UserError("give TRACES or --since/--until, not both")
    s, u = period(since, until)
    db = open_cli_store()
    ids = sorted({resolve_trace_id(db, t) for t in traces}) if traces else None
    r = reprice_calls(db, ids, s, u, pricing.cost)
    if as_json:
        print(json.dumps({"calls": r.calls, "changed": r.changed, "newly_priced": r.newly_priced, "traces": r.traces,
                          "unpriced": r.unpriced}, indent=2))
        return
    from llmtrace.render import fmt

    err = stderr_console()
    err.print(f"repriced {fmt.plural(r.calls, 'call')}: {r.changed:,} changed ({r.newly_priced:,} priced for the first time) "
              f"in {fmt.plural(r.traces, 'trace')}", markup=False)
    if r.unpriced:
        names = ", ".join(f"{fmt.visible(m)} ({n:,})" for m, n in sorted(r.unpriced.items(), key=lambda kv: (-kv[1], kv[0])))
        err.print(f"still unpriced (no price known): {names}. Add prices in $LLMTRACE_HOME/prices.json.",
                  markup=False, style="yellow")


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
                d["a"], d["b"], d["delta"] = money(d["a"]), money(d["b"]), money(d["delta"])
        print(json.dumps({"a": a.id, "b": b.id, "totals": deltas, "differs": differs,
                          "steps": [{"op": c.op, "a": side(c.a), "b": side(c.b), "changes": c.diffs} for c in changes]},
                         indent=2, ensure_ascii=False))
    else:
        from llmtrace.render.diff import diff_lines
        from llmtrace.render.stream import print_lines, silence_stdout

        try:
            print_lines(stdout_console(), diff_lines(a, b, changes, deltas))
        except BrokenPipeError:
            silence_stdout()
    if exit_code and differs:
        raise typer.Exit(1)


@app.command()
def view(
    trace: str = typer.Argument("last", help="Trace id, any unique prefix of it, or last / last~1 / last~2 …"),
    output: Optional[str] = typer.Option(None, "--output", "-o", metavar="FILE", help="Write the page here (default: llmtrace-ID.html in the current folder; - for stdout)."),
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
    from llmtrace.store.queries import (
        get_folded_spans,
        get_spans,
        get_trace,
        load_payloads,
        resolve_trace_id,
    )

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
    with private_file(path) as f:
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
