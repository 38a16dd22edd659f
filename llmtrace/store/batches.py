"""The batch-gathering loop the store's writers share (the spool's writer thread, the helper process, the
response cache's writer thread): one commit for what arrived within a short linger."""

from __future__ import annotations

import queue
import threading
from typing import Any

from llmtrace.clock import timer_scale

# How stale the SQLite copy of a running trace may be. One commit for the spans of 200 ms, not one a
# span: a commit costs the copier ~0.7 ms of CPU, whatever the batch (the pages of the table,
# its indexes and the search index, written to the WAL), CPU the traced program could use. Batches of
# 14 spans (50 ms of a fast loop) cost ~120 µs a span to store, of 56 spans (200 ms) ~75 µs.
_LINGER_S = 0.2 * timer_scale()


def gather(q: queue.SimpleQueue[Any], ending: threading.Event, limit: int | None = None) -> list[Any]:
    """The next batch off `q`: wait for an item, let more gather for the linger (one commit for many;
    at once when `ending` is set, which its setter does before queueing its last item), then take what
    is there, up to `limit`."""
    batch = [q.get()]
    ending.wait(_LINGER_S)
    while limit is None or len(batch) < limit:
        try:
            batch.append(q.get_nowait())
        except queue.Empty:
            break
    return batch
