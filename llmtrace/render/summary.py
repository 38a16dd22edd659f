"""The few lines `llmtrace run` prints on stderr when the script ends."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from llmtrace.ids import short_id
from llmtrace.model import Trace
from llmtrace.render import fmt
from llmtrace.render.tree import STATUS_STYLE


def run_summary(trace: Trace, parts: Any = None) -> Text:
    """`parts` (queries.RunParts) for a split run: its traces' count and summed totals."""
    t = parts.totals if parts is not None else trace.totals
    sid = short_id(trace.id)
    text = Text()
    text.append("llmtrace: ", style="bold")
    text.append(f"{'run' if parts is not None else 'trace'} {sid} ", style="bold")
    text.append(f"({trace.id}) ", style="dim")
    text.append(trace.status, style=STATUS_STYLE.get(trace.status, ""))
    if trace.exit_code:
        text.append(f" (exit {trace.exit_code})")
    text.append(f" in {fmt.duration(trace.duration_us)}")
    if parts is not None:
        text.append(f", split into {fmt.plural(parts.traces, 'trace')}")
        if parts.errors:
            text.append(f" ({parts.errors} failed)", style=STATUS_STYLE.get("error", ""))
    text.append("\n")
    text.append(f"  {fmt.plural(t.llm_calls, 'LLM call')} · {fmt.plural(t.tool_calls, 'tool call')} · ")
    text.append(f"{fmt.count(t.input_tokens)} in / {fmt.count(t.output_tokens)} out tokens · ")
    text.append(fmt.money(t.cost, t.unpriced_calls))
    if t.cache_hits:
        source = "the recorded trace" if "replay_of" in trace.tags else "the cache"
        text.append(f" · {t.cache_hits:,} replayed from {source} (saved {fmt.money(t.cost_saved)})")
    if t.retries:
        text.append(f" · {t.retries} {'retry' if t.retries == 1 else 'retries'}")
    if trace.status == "over-budget" and trace.error:
        text.append(f"\n  stopped: {trace.error}", style=STATUS_STYLE.get(trace.status, ""))
    if parts is not None:
        text.append(f"\n  see them: llmtrace ls --run {sid}")
    else:
        text.append(f"\n  see it: llmtrace show {sid}")
    return text
