"""Tables for `llmtrace ls`."""

from __future__ import annotations

from rich.table import Table

from llmtrace.ids import short_id
from llmtrace.model import Trace
from llmtrace.render import fmt
from llmtrace.render.tree import STATUS_STYLE


def trace_table(traces: list[Trace]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for col, justify in (("id", "left"), ("name", "left"), ("started", "left"), ("duration", "right"),
                         ("status", "left"), ("llm", "right"), ("tools", "right"), ("tokens", "right"),
                         ("cost", "right"), ("tags", "left")):
        table.add_column(col, justify=justify, no_wrap=col != "tags")  # type: ignore[arg-type]
    for t in traces:
        tot = t.totals
        table.add_row(
            short_id(t.id),
            t.name,
            fmt.local_time(t.start_us),
            fmt.duration(t.duration_us),
            f"[{STATUS_STYLE.get(t.status, '')}]{t.status}[/]",
            str(tot.llm_calls),
            str(tot.tool_calls),
            f"{tot.input_tokens + tot.output_tokens:,}",
            fmt.money(tot.cost, tot.unpriced_calls),
            " ".join(f"{k}={v}" for k, v in t.tags.items()),
        )
    return table
