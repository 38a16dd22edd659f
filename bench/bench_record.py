"""Recording overhead: time added per span on the capture → store path.

Measures, in one process: (a) the handler + recorder + SQLite writer driven directly with
LangChain's callback arguments; (b) the same with an in-memory exporter (capture cost alone);
(c) end to end inside LangChain: a RunnableLambda invoked N times untraced, then traced, the
difference divided by spans recorded.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


_PROSE = ("The agent looked up the weather in Oslo, then multiplied the temperature by thirty six and "
          "squared the result before answering the user's question about the forecast for tomorrow. ") * 6


def _handler_loop(exporter, n: int, prose: bool = False) -> float:
    from llmtrace.capture import context
    from llmtrace.capture.handler import TraceHandler
    from llmtrace.ids import uuid7
    from llmtrace.model import Trace
    from llmtrace.core.recorder import Recorder
    from llmtrace.redact import Redactor

    rec = Recorder(Trace(id="bench", name="bench", start_us=0), [exporter], Redactor())
    context.set_recorder(rec)
    h = TraceHandler()
    root = uuid7()
    ids = [uuid7() for _ in range(n)]
    t0 = time.perf_counter()
    for i, rid in enumerate(ids):
        question = f"{_PROSE} step {i}" if prose else f"step {i}"
        h.on_chain_start({"name": "step"}, {"question": question, "n": i}, run_id=rid, parent_run_id=root,
                         tags=["t"], metadata={"k": "v"}, name="step")
        h.on_chain_end({"answer": f"{_PROSE} {i * 2}" if prose else i * 2}, run_id=rid)
    elapsed = time.perf_counter() - t0
    context.set_recorder(None)
    return elapsed / n * 1e6


def measure(quick: bool = False) -> dict[str, float]:
    from llmtrace.core.recorder import MemoryExporter
    from llmtrace.redact import Redactor
    from llmtrace.store import open_store
    from llmtrace.store.writer import StoreWriter

    from llmtrace.store.spool import SpoolingWriter

    n = 2000 if quick else 20000
    repeats = 3 if quick else 5
    tmp = Path(tempfile.mkdtemp())
    sync_us, spool_us, spool_total_us, memory_us = [], [], [], []
    indexed: dict[bool, list[float]] = {True: [], False: []}
    for r in range(repeats):
        # The search index (FTS5, kept by triggers): spans with ~1.3 kB of prose in and out, all CPU
        # until they are in SQLite, with the index and with its triggers dropped, side by side.
        for with_index in (True, False):
            db = open_store(tmp / f"fts{r}{with_index}.db")
            if not with_index:
                for trigger in ("span_text_ai", "span_text_ad", "span_text_au"):
                    db.execute(f"DROP TRIGGER IF EXISTS {trigger}")
            spool = SpoolingWriter(StoreWriter(db, Redactor.from_environ()), tmp / "spool", f"fts{r}{with_index}")
            t0 = time.perf_counter()
            _handler_loop(spool, n // 2, prose=True)
            spool.close()
            indexed[with_index].append((time.perf_counter() - t0) / (n // 2) * 1e6)
            db.close()
        db = open_store(tmp / f"r{r}.db")
        writer = StoreWriter(db, Redactor.from_environ())
        sync_us.append(_handler_loop(writer, n))  # one commit per span, in the caller's thread
        spool = SpoolingWriter(writer, tmp / "spool", f"t{r}")
        t0 = time.perf_counter()
        spool_us.append(_handler_loop(spool, n))  # spool line per span, SQLite in batches
        spool.close()
        spool_total_us.append((time.perf_counter() - t0) / n * 1e6)  # … until all of it is in SQLite
        memory_us.append(_handler_loop(MemoryExporter(), n))
        assert db.execute("SELECT count(*) FROM spans").fetchone()[0] == 2 * n
        db.close()

    # End to end inside LangChain: the same chain, untraced then traced.
    from langchain_core.runnables import RunnableLambda

    chain = RunnableLambda(lambda x: x + 1)
    m = n // 4

    def loop() -> float:
        t0 = time.perf_counter()
        for i in range(m):
            chain.invoke(i)
        return time.perf_counter() - t0

    loop()  # warm up
    plain = [loop() for _ in range(repeats)]
    from llmtrace import capture
    from llmtrace.model import Trace
    from llmtrace.core.recorder import Recorder

    db = open_store(tmp / "lc.db")
    spool = SpoolingWriter(StoreWriter(db, Redactor()), tmp / "spool", "lc")
    capture.install(Recorder(Trace(id="bench-lc", name="b", start_us=0), [spool], Redactor()))
    traced = [loop() for _ in range(repeats)]
    capture.uninstall()
    spool.close()
    spans = db.execute("SELECT count(*) FROM spans").fetchone()[0]
    per_span = (statistics.median(traced) - statistics.median(plain)) / (spans / repeats) * 1e6
    return {
        "spooled_us": statistics.median(spool_us),
        "spooled_until_in_sqlite_us": statistics.median(spool_total_us),
        "prose_until_in_sqlite_us": statistics.median(indexed[True]),
        "prose_until_in_sqlite_no_index_us": statistics.median(indexed[False]),
        "sync_commit_per_span_us": statistics.median(sync_us),
        "handler_to_memory_us": statistics.median(memory_us),
        "langchain_added_per_span_us": per_span,
        "langchain_invoke_untraced_us": statistics.median(plain) / m * 1e6,
        "spans_per_invoke": spans / repeats / m,
    }


if __name__ == "__main__":
    os.environ.setdefault("LLMTRACE_HOME", tempfile.mkdtemp())
    for k, v in measure("--quick" in sys.argv).items():
        print(f"{k:32s} {v:10.2f}")
