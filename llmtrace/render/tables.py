"""Tables for `llmtrace ls` and `llmtrace cost`."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from llmtrace.ids import short_id
from llmtrace.model import Trace
from llmtrace.render import fmt
from llmtrace.render.tree import STATUS_STYLE


def trace_table(traces: list[Trace], now_us: int, tz: Any = None) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    columns = [("id", "left"), ("name", "left"), ("started", "left"), ("duration", "right"), ("status", "left"),
               ("llm", "right"), ("tools", "right"), ("tokens", "right"), ("cost", "right"), ("cached", "right"),
               ("retries", "right"), ("score", "right"), ("tags", "left")]
    for col, justify in columns:
        table.add_column(col, justify=justify, no_wrap=col != "tags", max_width=28 if col == "name" else None,  # type: ignore[arg-type]
                         overflow="ellipsis")
    for t in traces:
        tot = t.totals
        table.add_row(
            short_id(t.id),
            t.name,
            fmt.when(t.start_us, now_us, tz),
            fmt.duration(t.duration_us) if t.end_us else "",
            Text(t.status, style=STATUS_STYLE.get(t.status, "")),
            str(tot.llm_calls),
            str(tot.tool_calls),
            f"{tot.input_tokens + tot.output_tokens:,}",
            Text(fmt.money(tot.cost, tot.unpriced_calls), style="yellow" if tot.unpriced_calls else ""),
            str(tot.cache_hits) if tot.cache_hits else "",
            str(tot.retries) if tot.retries else "",
            fmt.score(t.feedback),
            " ".join(f"{k}={v}" for k, v in t.tags.items()),
        )
    return table


def cost_table(rows: list[Any], by: str) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False, show_footer=True)
    title = by.split(":")[0] if not by.startswith("tag:") else by[4:]
    totals = {
        "calls": sum(r.calls for r in rows), "in": sum(r.input_tokens for r in rows),
        "out": sum(r.output_tokens for r in rows), "cost": sum(r.cost for r in rows),
        "cached": sum(r.cached_calls for r in rows), "saved": sum(r.saved for r in rows),
        "unpriced": sum(r.unpriced_calls for r in rows),
    }
    table.add_column(title, footer="total", no_wrap=True)
    table.add_column("calls", justify="right", footer=f"{totals['calls']:,}")
    table.add_column("tokens in", justify="right", footer=f"{totals['in']:,}")
    table.add_column("tokens out", justify="right", footer=f"{totals['out']:,}")
    table.add_column("cost", justify="right", footer=fmt.money(totals["cost"]))
    table.add_column("cached", justify="right", footer=f"{totals['cached']:,}")
    table.add_column("saved", justify="right", footer=fmt.money(totals["saved"]))
    table.add_column("unpriced", justify="right", footer=Text(f"{totals['unpriced']:,}", style="bold yellow" if totals["unpriced"] else ""))
    for r in rows:
        key = f"{short_id(r.key)} {r.label}" if by == "trace" else r.key
        table.add_row(
            key, f"{r.calls:,}", f"{r.input_tokens:,}", f"{r.output_tokens:,}", fmt.money(r.cost),
            f"{r.cached_calls:,}", fmt.money(r.saved),
            Text(f"{r.unpriced_calls:,} ⚠" if r.unpriced_calls else "0", style="yellow" if r.unpriced_calls else ""),
        )
    return table
