"""The few lines `llmtrace run` prints on stderr when the script ends.

Built as (text, style) pieces: rich draws them on a terminal; anywhere else they are written as they
are, which is what rich prints there too, without loading rich (~30 ms) for every run."""

from __future__ import annotations

from typing import Any

from llmtrace.ids import short_id
from llmtrace.model import Trace
from llmtrace.render import fmt
from llmtrace.render.fmt import STATUS_STYLE


def summary_pieces(trace: Trace, parts: Any = None) -> list[tuple[str, str]]:
    """`parts` (queries.RunParts) for a split run: its traces' count and summed totals."""
    t = parts.totals if parts is not None else trace.totals
    sid = short_id(trace.id)
    out: list[tuple[str, str]] = []

    def add(text: str, style: str = "") -> None:
        out.append((fmt.visible(text), style))  # a trace's name or error may hold escapes

    add("llmtrace: ", "bold")
    add(f"{'run' if parts is not None else 'trace'} {sid} ", "bold")
    add(f"({trace.id}) ", "dim")
    add(trace.status, STATUS_STYLE.get(trace.status, ""))
    if trace.exit_code:
        add(f" (exit {trace.exit_code})")
    add(f" in {fmt.duration(trace.duration_us)}")
    if parts is not None:
        add(f", split into {fmt.plural(parts.traces, 'trace')}")
        if parts.errors:
            add(f" ({parts.errors} failed)", STATUS_STYLE.get("error", ""))
    add("\n")
    add(f"  {fmt.plural(t.llm_calls, 'LLM call')} · {fmt.plural(t.tool_calls, 'tool call')} · ")
    add(f"{fmt.count(t.input_tokens)} in / {fmt.count(t.output_tokens)} out tokens · ")
    add(fmt.money(t.cost, t.unpriced_calls))
    if t.cache_hits:
        source = "the recorded trace" if "replay_of" in trace.tags else "the cache"
        add(f" · {t.cache_hits:,} replayed from {source} (saved {fmt.money(t.cost_saved)})")
    if t.retries:
        add(f" · {t.retries} {'retry' if t.retries == 1 else 'retries'}")
    if trace.status == "over-budget" and trace.error:
        add(f"\n  stopped: {trace.error}", STATUS_STYLE.get(trace.status, ""))
    if parts is not None:
        add(f"\n  see them: llmtrace ls --run {sid}")
    else:
        add(f"\n  see it: llmtrace show {sid}")
    return out


def run_summary(trace: Trace, parts: Any = None) -> Any:
    """The summary as a rich Text."""
    from rich.text import Text

    text = Text()
    for piece, style in summary_pieces(trace, parts):
        text.append(piece, style=style)
    return text


def plain_summary(trace: Trace, parts: Any = None) -> str:
    """The summary as rich prints it where nothing is styled (not a terminal, no FORCE_COLOR)."""
    return "".join(piece for piece, _ in summary_pieces(trace, parts)) + "\n"
