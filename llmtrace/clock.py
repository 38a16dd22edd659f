"""The wall clock for decisions that depend on it (cache expiry), settable by tests.

LLMTRACE_CLOCK_OFFSET_S shifts it (seconds, may be negative), so a test can let a cache entry
expire without waiting and without racing a busy machine.
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
