"""Concurrent writers: 8 processes recording spans into one store at once.

Each process runs its own trace and records N spans through the real path (Recorder → spool →
group-commit writer → SQLite), all starting together. Reported: total spans per second (from the
first start to the last finish), spans lost (expected − found in the store) and any
"database is locked" errors.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

WORKER = r"""
import os, sys, time
sys.path.insert(0, sys.argv[4])
from llmtrace.model import Trace
from llmtrace.core.recorder import Recorder
from llmtrace.redact import Redactor
from llmtrace.store import open_store
from llmtrace.store.spool import SpoolingWriter, spool_dir
from llmtrace.store.writer import StoreWriter
home, n, start_at = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
from pathlib import Path
db = open_store(Path(home) / "traces.db")
w = StoreWriter(db, Redactor())
trace = Trace(id=f"writer-{os.getpid()}", name="bench", start_us=int(time.time() * 1e6), pid=os.getpid())
w.start_trace(trace)
spool = SpoolingWriter(w, spool_dir(Path(home)), trace.id)
rec = Recorder(trace, [spool], w.redactor)
while time.time() < start_at:
    time.sleep(0.001)
t0 = time.time()
for i in range(n):
    s = rec.start_span(kind="chain", name="step", parent_id=None, inputs={"i": i}, metadata={"k": "v"})
    s.outputs = {"o": i}
    rec.end_span(s)
spool.close()
trace.end_us = int(time.time() * 1e6)
trace.status = "ok"
w.finish_trace(trace)
print(t0, time.time())
"""


def measure(quick: bool = False, processes: int = 8) -> dict[str, float]:
    n = 2000 if quick else 25_000
    home = Path(tempfile.mkdtemp())
    from llmtrace.store import open_store

    open_store(home / "traces.db").close()  # schema in place before the race
    root = str(Path(__file__).resolve().parent.parent)
    start_at = time.time() + 3.0
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(home), str(n), str(start_at), root],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(processes)]
    outs = [p.communicate(timeout=600) for p in procs]
    errors = sum(("locked" in err) + (p.returncode != 0) for p, (_, err) in zip(procs, outs))
    spans_t = [tuple(map(float, out.split())) for out, _ in outs if out.strip()]
    first, last = min(t for t, _ in spans_t), max(t for _, t in spans_t)
    db = open_store(home / "traces.db")
    found = db.execute("SELECT count(*) FROM spans").fetchone()[0]
    return {
        "processes": processes,
        "spans_per_process": n,
        "spans_per_s": found / (last - first),
        "lost": processes * n - found,
        "errors": errors,
        "spool_files_left": len(list((home / "spool").glob("*.jsonl"))),
    }


if __name__ == "__main__":
    os.environ.setdefault("LLMTRACE_HOME", tempfile.mkdtemp())
    for k, v in measure("--quick" in sys.argv).items():
        print(f"{k:18s} {v:12.1f}")
