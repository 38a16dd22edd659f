"""Printing a long rendering line by line: no single Text of the whole output is built.

What comes out is what printing the lines joined by newlines (with soft wrap) would print; on a
terminal, output longer than the screen goes through the pager, as `cli._print` does.
"""

from __future__ import annotations

import errno
import itertools
import os
import sys
from typing import Any, Iterable, Iterator

from rich.text import Text

from llmtrace.render.fmt import clean

BATCH = 1000  # lines per console.print: big enough to amortise rich's per-call cost


def print_lines(console: Any, lines: Iterable[Text], *, pager: bool = True) -> None:
    """Print the lines; raises BrokenPipeError when the reader goes away (`… | head`), see silence_stdout."""
    console.on_broken_pipe = _raise_broken_pipe  # rich would exit 1 on its own
    it: Iterator[Text] = iter(lines)
    if pager and console.is_terminal:
        first = list(itertools.islice(it, console.height + 1))
        if len(first) > console.height:  # one line a Text: soft wrap never breaks one
            os.environ.setdefault("LESS", "FRX")
            with console.pager(styles=True):
                _emit(console, itertools.chain(first, it))
            return
        it = itertools.chain(first, it)
    _emit(console, it)


def _emit(console: Any, lines: Iterator[Text]) -> None:
    newline = Text("\n")
    while True:
        batch = list(itertools.islice(lines, BATCH))
        if not batch:
            return
        # The renderers clean their own lines; this is the net for a view that forgot.
        console.print(newline.join([clean(line) for line in batch]), soft_wrap=True)


def _raise_broken_pipe() -> None:
    raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


def silence_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so that nothing fails again when Python flushes it at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
