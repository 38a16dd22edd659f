"""What the store helper spends on one request of a `run --split` server, part by part.

The server bench's app (tests/agents/uvicorn_app.py) has its /ask endpoint called 20 times in a loop
under `llmtrace run --split --no-cache` against the scripted server (each call the chain a request runs,
with the request's metadata and tags); its traces (3 spans each: the chain, the prompt, the LLM call) are
read back and turned into the spool
records the program writes (a `B` record, a snapshot per span, an `E` record), with fresh ids, for
TRACES traces. Those records are then stored into a fresh store as the helper stores them, in batches of
40 traces (about what 200 ms of a busy server brings), each part timed in CPU seconds:

- decode: the snapshots decoded and their JSON columns encoded (`spool.decode_records`), the B and E
  records read;
- begin: the traces' first rows and tags (`StoreWriter.begin_traces`);
- rows: the span and payload rows, with the search index's and the other indexes' upkeep (`write_rows`);
- finish: the traces ended and their totals summed (`finish_traces`).

Then, with `--drop`, the same again on stores without the search index's trigger and without the cost
index, one at a time, to show what each costs.

    python bench/bench_helper_rows.py                  # 2,000 traces, 3 rounds
    python bench/bench_helper_rows.py --drop           # and the two index variants
    python bench/bench_helper_rows.py --quick
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ROOT, llmtrace, median

APP = ROOT / "tests" / "agents" / "uvicorn_app.py"
# The app's requests, made in a loop (no server): `ask(n, user)` is what GET /ask/N?user=… runs.
LOOP = f"""import sys
sys.path.insert(0, {str(APP.parent)!r})
import uvicorn_app
for n in range(int(sys.argv[1])):
    uvicorn_app.ask(n, "bench")
"""
BATCH = 40
VARIANTS = {"as shipped": "", "no search-index trigger": "DROP TRIGGER span_text_ai",
            "no cost index": "DROP INDEX spans_llm_cost"}


def _sample(scratch: Path, traces: int) -> tuple[list[Any], dict[str, list[Any]]]:
    """`traces` split traces of the app, recorded for real, with their spans (payloads included)."""
    from llmtrace.mock import MockServer, Script
    from llmtrace.store import open_store
    from llmtrace.store.queries import get_spans, get_trace

    script = scratch / "loop.py"
    script.write_text(LOOP)
    home = scratch / "sample"
    with MockServer(Script.from_dict({})) as server:
        env = {**os.environ, "OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "bench", "LLMTRACE_HOME": str(home)}
        subprocess.run(llmtrace("run", "-q", "--split", "--no-cache", str(script), str(traces)), env=env, cwd=str(ROOT),
                       check=True, stdout=subprocess.DEVNULL)
    db = open_store(home / "traces.db")
    try:
        ids = [r[0] for r in db.execute("SELECT id FROM traces WHERE run_id IS NOT NULL AND id != run_id")]
        return [get_trace(db, t) for t in ids], {t: get_spans(db, t, payloads=True) for t in ids}
    finally:
        db.close()


def _records(writer: Any, sample: list[Any], spans: dict[str, list[Any]], traces: int) -> list[list[tuple[bytes, bytes]]]:
    """Spool records of `traces` traces like the sample's, fresh ids each, in batches of BATCH traces."""
    from llmtrace.store import spool
    from llmtrace.store.writer import encode_json

    batches, batch = [], []
    for i in range(traces):
        trace = sample[i % len(sample)]
        new = dataclasses.replace(trace, id=str(uuid.uuid4()), tags=dict(trace.tags))
        ids = {s.id: str(uuid.uuid4()) for s in spans[trace.id]}
        batch.append((spool._BEGIN, encode_json(writer.trace_fields(new)).encode()))
        for s in spans[trace.id]:
            copy = dataclasses.replace(s, id=ids[s.id], trace_id=new.id, parent_id=ids.get(s.parent_id, s.parent_id))
            batch.append((spool._SNAPSHOT, writer.encoder.snapshot(copy)))
        batch.append((spool._END, encode_json({f: getattr(new, f) for f in spool._ENDED_FIELDS}).encode()))
        if (i + 1) % BATCH == 0:
            batches.append(batch)
            batch = []
    return batches + ([batch] if batch else [])


def _store(folder: Path, drop: str, sample: list[Any], spans: dict[str, list[Any]], traces: int) -> dict[str, float]:
    """µs of CPU a trace for each part of storing `traces` traces into a fresh store in `folder`."""
    from llmtrace.redact import Redactor
    from llmtrace.store import spool
    from llmtrace.store.db import open_db
    from llmtrace.store.writer import StoreWriter

    folder.mkdir()
    writer = StoreWriter(open_db(folder / "traces.db"), Redactor())
    if drop:
        writer.db.execute(drop)
        writer.db.commit()
    batches = _records(writer, sample, spans, traces)
    spent = dict.fromkeys(("decode", "begin", "rows", "finish"), 0.0)
    for records in batches:
        t = time.process_time()
        rows, begun, ended = (spool.decode_records(records, writer.encoder), spool.begun_traces(records),
                              spool.ended_traces(records))
        spent["decode"] += time.process_time() - t
        for part, step, items in (("begin", writer.begin_traces, begun), ("rows", writer.write_rows, rows),
                                  ("finish", writer.finish_traces, ended)):
            t = time.process_time()
            step(items)
            spent[part] += time.process_time() - t
    stored = writer.db.execute("SELECT count(*) FROM traces WHERE end_us IS NOT NULL").fetchone()[0]
    writer.close()
    if stored != traces:
        raise RuntimeError(f"stored {stored} of {traces} traces")
    out = {part: s / traces * 1e6 for part, s in spent.items()}
    out["total"] = sum(out.values())
    return out


def measure(traces: int = 2000, rounds: int = 3, drop: bool = False, quick: bool = False) -> dict[str, dict[str, float]]:
    if quick:
        traces, rounds = 80, 1
    scratch = Path(tempfile.mkdtemp())
    sample, spans = _sample(scratch, 20)
    variants = VARIANTS if drop else {"as shipped": ""}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    for r in range(rounds):  # variants in turn, round by round: drift hits all alike
        for i, (name, sql) in enumerate(variants.items()):
            runs[name].append(_store(scratch / f"store-{r}-{i}", sql, sample, spans, traces))
    return {name: {part: median([run[part] for run in rows]) for part in rows[0]} for name, rows in runs.items()}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traces", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--drop", action="store_true", help="also without the search-index trigger, and without the cost index")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    result = measure(a.traces, a.rounds, a.drop, a.quick)
    print("µs of CPU a trace (3 spans), medians over the rounds")
    print(f"{'':26s}" + "".join(f"{p:>9s}" for p in ("decode", "begin", "rows", "finish", "total")))
    for name, parts in result.items():
        print(f"{name:26s}" + "".join(f"{parts[p]:9.0f}" for p in ("decode", "begin", "rows", "finish", "total")))
