"""Tables for `llmtrace ls` and `llmtrace cost`.

Built for the width they are printed at: ids, costs and counts are never cut; when the table is too wide
the name column is cut with an ellipsis first, then the least useful columns are left out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderableType
from rich.table import Table
from rich.text import Text

from llmtrace.ids import short_id
from llmtrace.model import Trace
from llmtrace.render import fmt
from llmtrace.render.tree import STATUS_STYLE

_GAP = 2  # between two columns: box=None and pad_edge=False leave one space of padding on each side


@dataclass
class Column:
    header: str
    cells: list[Any]  # str or Text, one a row
    justify: str = "right"
    footer: Any = None
    drop: int = 0  # 0: always shown; 1, 2, …: left out in this order when the table is too wide
    shrink: int = 0  # a text column cut (or wrapped, with wrap) down to this width when too wide; 0: never cut
    wrap: bool = False
    cap: int | None = None  # never wider than this (cut with an ellipsis)
    short: str | None = None  # the header when the table is too wide
    size: int = 0  # the width given, set by fit
    body: int = -1  # the widest cell or footer, measured once

    def __post_init__(self) -> None:
        # Every cell a Text: rich reads a str cell as markup (a trace named `[link=…]` became a live link),
        # and what a cell holds comes from a trace.
        self.cells = [fmt.cell(c) for c in self.cells]
        if self.footer is not None:
            self.footer = fmt.cell(self.footer)
        if self.body < 0:
            texts = [*self.cells, *([self.footer] if self.footer is not None else [])]
            self.body = max((c.cell_len if isinstance(c, Text) else cell_len(str(c)) for c in texts), default=0)

    def full(self) -> int:
        """The width that shows every cell whole."""
        return max(self.body, cell_len(self.header))

    def natural(self) -> int:
        return self.full() if self.cap is None else min(self.full(), max(self.cap, cell_len(self.header)))

    def empty(self) -> bool:
        return all((c.plain if isinstance(c, Text) else str(c)) in ("", "0", "$0") for c in self.cells)


def _width(cols: list[Column]) -> int:
    return sum(c.size for c in cols) + _GAP * (len(cols) - 1)


def _shrunk(cols: list[Column], width: int) -> list[Column]:
    """Every column at its natural width, then the shrinkable ones cut as far as needed (not below their minimum)."""
    cols = [replace(c, size=c.natural()) for c in cols]
    for c in cols:
        excess = _width(cols) - width
        if excess > 0 and c.shrink:
            c.size = max(min(c.size, c.shrink), c.size - excess)
    return cols


def fit(cols: list[Column], width: int) -> list[Column]:
    """The columns to show at this width and their sizes: shrink first, then short headers, then leave columns out."""
    stages: list[Callable[[list[Column]], list[Column]]] = [
        lambda cs: cs,
        lambda cs: [replace(c, header=c.short or c.header) for c in cs],
        lambda cs: [c for c in cs if not (c.drop and c.empty())],
    ]
    for rank in sorted({c.drop for c in cols if c.drop}):
        stages.append(lambda cs, rank=rank: [c for c in cs if c.drop != rank])
    shown = cols
    for stage in stages:
        cols = stage(cols)
        shown = _shrunk(cols, width)
        if _width(shown) <= width:
            break
    return shown


def build(cols: list[Column], width: int) -> Table:
    """A table of the columns that fit in `width`; columns that are not cut get their full width as minimum."""
    shown = fit(cols, width)
    table = Table(box=None, header_style="bold", pad_edge=False, show_footer=any(c.footer is not None for c in shown))
    for c in shown:
        cut = c.size < c.full()
        table.add_column(c.header, justify=c.justify, footer=c.footer if c.footer is not None else "",  # type: ignore[arg-type]
                         no_wrap=not c.wrap, overflow="fold" if c.wrap else "ellipsis",
                         width=c.size if cut or c.wrap else None, min_width=None if cut else c.size)
    for row in zip(*(c.cells for c in shown)) if shown else []:
        table.add_row(*row)
    return table


class Fitted:
    """A renderable that builds its table for the width it is printed at (the console's)."""

    def __init__(self, make: Callable[[int], Table]) -> None:
        self.make = make

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[RenderableType]:
        yield self.make(options.max_width)


def trace_table(traces: list[Trace], now_us: int, tz: Any = None, width: int | None = None) -> Table | Fitted:
    """`ls`: one row a trace. With no width, fitted to the console it is printed on."""
    if width is None:
        return Fitted(lambda w: trace_table(traces, now_us, tz, w))
    tots = [t.totals for t in traces]
    cols = [
        Column("id", [short_id(t.id) for t in traces], "left"),
        Column("name", [t.name for t in traces], "left", shrink=12, cap=28),
        Column("started", [fmt.when(t.start_us, now_us, tz) for t in traces], "left", drop=6),
        Column("duration", [fmt.duration(t.duration_us) if t.end_us else "" for t in traces], drop=1),
        Column("status", [Text(t.status, style=STATUS_STYLE.get(t.status, "")) for t in traces], "left"),
        Column("llm", [str(x.llm_calls) for x in tots]),
        Column("tools", [str(x.tool_calls) for x in tots]),
        Column("tokens", [f"{x.input_tokens + x.output_tokens:,}" for x in tots]),
        Column("cost", [Text(fmt.money(x.cost, x.unpriced_calls), style="yellow" if x.unpriced_calls else "") for x in tots]),
        Column("cached", [str(x.cache_hits) if x.cache_hits else "" for x in tots], drop=3),
        Column("retries", [str(x.retries) if x.retries else "" for x in tots], drop=2),
        Column("score", [fmt.score(t.feedback) for t in traces], drop=5),
        Column("tags", [" ".join(f"{k}={v}" for k, v in t.tags.items()) for t in traces], "left", drop=4, shrink=12, wrap=True),
    ]
    return build(cols, width)


def turn_lines(turns: list[Trace], width: int) -> list[Text]:
    """`llmtrace thread`: one line a turn, oldest first: its number, id, status, name (its input's head),
    calls and cost; cropped to `width` (the name is what tells turns apart, so it comes before the figures)."""
    out = []
    for i, t in enumerate(turns, 1):
        x = t.totals
        line = Text.assemble((f"{i:>2}. ", "bold"), (short_id(t.id), "dim"), "  ",
                             (f"{t.status:<7}", STATUS_STYLE.get(t.status, "")), "  ", (t.name, "bold"),
                             f"  · {fmt.plural(x.llm_calls, 'LLM call')} · {fmt.money(x.cost, x.unpriced_calls)}"
                             f" · {fmt.duration(t.duration_us)}")
        line.truncate(max(20, width), overflow="ellipsis")
        out.append(line)
    return out


def cost_table(rows: list[Any], by: str, width: int | None = None) -> Table | Fitted:
    """`cost`: one row a group, totals in the footer. With no width, fitted to the console it is printed on."""
    if width is None:
        return Fitted(lambda w: cost_table(rows, by, w))
    title = by.split(":")[0] if not by.startswith("tag:") else by[4:]
    unpriced = sum(r.unpriced_calls for r in rows)
    cols = [
        Column(title, [f"{short_id(r.key)} {r.label}" if by in ("trace", "run") else r.key for r in rows], "left",
               footer="total", shrink=14 if by in ("trace", "run") else 12),
        Column("calls", [f"{r.calls:,}" for r in rows], footer=f"{sum(r.calls for r in rows):,}"),
        Column("tokens in", [f"{r.input_tokens:,}" for r in rows], footer=f"{sum(r.input_tokens for r in rows):,}", short="tok in"),
        Column("tokens out", [f"{r.output_tokens:,}" for r in rows], footer=f"{sum(r.output_tokens for r in rows):,}", short="tok out"),
        Column("cost", [fmt.money(r.cost) for r in rows], footer=fmt.money(sum(r.cost for r in rows))),
        Column("cached", [f"{r.cached_calls:,}" for r in rows], footer=f"{sum(r.cached_calls for r in rows):,}", drop=2),
        Column("saved", [fmt.money(r.saved) for r in rows], footer=fmt.money(sum(r.saved for r in rows)), drop=1),
        Column("unpriced", [Text(f"{r.unpriced_calls:,} ⚠" if r.unpriced_calls else "0", style="yellow" if r.unpriced_calls else "")
                            for r in rows], footer=Text(f"{unpriced:,}", style="bold yellow" if unpriced else "")),
    ]
    streamed = sum(r.streamed_calls for r in rows)
    if streamed:  # the mean time to first token of the streamed calls: left out first when too wide
        mean = sum((r.ttft_us or 0) * r.streamed_calls for r in rows) / streamed
        cols.append(Column("ttft", [fmt.duration(r.ttft_us) if r.streamed_calls else "" for r in rows],
                           footer=fmt.duration(mean), drop=3))
    return build(cols, width)
