"""The wall clock for decisions that depend on it (cache expiry), settable by tests; and the scale of
llmtrace's timers.

LLMTRACE_CLOCK_OFFSET_S shifts it (seconds, may be negative), so a test can let a cache entry
expire without waiting and without racing a busy machine.

LLMTRACE_TIMER_SCALE (default 1) stretches the timers of a run: how long the copier lets spans
gather before a commit, and how often the open spans are published for `show --follow`. The
instructions bench runs programs under valgrind, ~30× slower than natively; stretched as much, the
timers do per call what they do in a native run, instead of 30× over.
"""

from __future__ import annotations

import os
import time


def now() -> float:
    offset = os.environ.get("LLMTRACE_CLOCK_OFFSET_S")
    if offset:
        try:
            return time.time() + float(offset)
        except ValueError:
            pass
    return time.time()


def now_us() -> int:
    """The time spans are stamped with: microseconds since the epoch, UTC (not shifted by the offset)."""
    return time.time_ns() // 1000


def timer_scale() -> float:
    try:
        return min(max(float(os.environ.get("LLMTRACE_TIMER_SCALE", "1")), 1.0), 1000.0)
    except ValueError:
        return 1.0
