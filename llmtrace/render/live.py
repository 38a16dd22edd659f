"""`show --follow` and `ls --watch`: frames redrawn in place while runs go on."""

from __future__ import annotations

from rich.text import Text

from llmtrace.model import Span, Trace
from llmtrace.render.fmt import clean
from llmtrace.render.tree import tree_lines


def follow_frame(trace: Trace, spans: list[Span], in_flight: int, height: int) -> Text:
    """The tree as it stands (open spans marked), cut to the terminal's height: the trace's line,
    then the newest lines, then a line saying what is being followed."""
    lines = list(tree_lines(trace, spans))
    room = max(3, height - 2)
    if len(lines) > room:
        lines = lines[:1] + [Text(f"… {len(lines) - room:,} lines above …", style="dim")] + lines[-(room - 2):]
    flying = f"{in_flight} span{'s' if in_flight != 1 else ''} in flight · " if in_flight else ""
    lines.append(Text(f"following {trace.id[:8]}: {flying}Ctrl-C stops following (the run goes on)", style="dim"))
    frame = Text("\n").join([clean(line) for line in lines])
    frame.no_wrap, frame.overflow = True, "ellipsis"  # one screen line a tree line: the height holds
    return frame
