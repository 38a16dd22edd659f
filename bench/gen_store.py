"""Generate a large trace store for the read-command benchmarks.

    python bench/gen_store.py DIR [--traces 100000] [--spans 1000000] [--big 5000] [--steps 20000]

Writes DIR/traces.db through llmtrace's own schema: TRACES traces over the last 60 days, SPANS
spans in all (a chain, LLM calls and tool calls per trace, ~40 % LLM), tags on a third of the
traces, and one extra trace with BIG spans (printed at the end: its id is what `show` is timed on).
With --steps, also a long run's trace: STEPS top-level agent steps of 10 spans each (an agent run
over STEPS questions: 20,000 steps → 200,000 spans), its id printed on a second line.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MODELS = [("gpt-4o-mini-2024-07-18", 0.15, 0.60), ("gpt-4o-2024-08-06", 2.5, 10.0), ("o3-mini-2025-01-31", 1.1, 4.4),
          ("acme-private-7b", None, None)]
NAMES = ["math_agent.py", "support_bot.py", "rag_pipeline.py", "nightly_eval.py", "triage.py"]


def _spans_for(trace_id: str, start_us: int, n: int, rng: random.Random):
    root = str(uuid.uuid4())
    rows = [(root, trace_id, None, "chain", "AgentExecutor", start_us, start_us + n * 1000, "ok", None, None,
             json.dumps({"input": "question"}), json.dumps({"output": "answer"}), None, None,
             None, None, None, None, None, None, None, None, None, None, None, 0, None, None, None)]
    payloads = []
    for i in range(n - 1):
        sid = str(uuid.uuid4())
        t = start_us + 1000 * (i + 1)
        if i % 5 in (0, 2):
            model, pin, pout = rng.choice(MODELS)
            tin, tout = rng.randint(100, 3000), rng.randint(10, 500)
            cost = None if pin is None else (tin * pin + tout * pout) / 1e6
            hit = "exact" if rng.random() < 0.1 else None
            rows.append((sid, trace_id, root, "llm", "ChatOpenAI", t, t + 800, "ok", None, None,
                         json.dumps({"messages": [{"role": "human", "content": f"step {i}"}]}), json.dumps({"content": "ok"}),
                         None, None, "gpt-4o-mini", model, "openai", tin, tout, 0, 0, "stop", None, None,
                         0.0 if hit else cost, 0, hit, cost if hit else None, 1))
            payloads.append((sid, json.dumps({"model": "gpt-4o-mini", "messages": []}), json.dumps({"choices": []})))
        elif i % 5 in (1, 3):
            rows.append((sid, trace_id, root, "tool", "multiply", t, t + 50, "ok", None, None,
                         json.dumps({"first_int": i, "second_int": 2}), json.dumps(i * 2), None, None,
                         None, None, None, None, None, None, None, None, None, None, None, 0, None, None, None))
        else:
            rows.append((sid, trace_id, root, "chain", "RunnableSequence", t, t + 900, "ok", None, None,
                         json.dumps({"x": i}), json.dumps({"y": i}), None, None,
                         None, None, None, None, None, None, None, None, None, None, None, 0, None, None, None))
    return rows, payloads


_NULLS_AFTER_OUTPUTS = (None,) * 13  # tags … cost: the columns a chain or tool span leaves empty


def _chain(sid: str, trace_id: str, parent: str | None, name: str, start: int, end: int, inputs: str | None, outputs: str | None) -> tuple:
    return (sid, trace_id, parent, "chain", name, start, end, "ok", None, None, inputs, outputs,
            *_NULLS_AFTER_OUTPUTS, 0, None, None, None)


def _steps_rows(trace_id: str, start_us: int, step: int, rng: random.Random):
    """One agent step as a real AgentExecutor run records it: 10 spans, two LLM calls (one asking for
    a tool, one answering) each inside its RunnableSequence with prompt and parser, and the tool call."""
    root = str(uuid.uuid4())
    a, b = rng.randint(2, 999), rng.randint(2, 99)
    question = f"What is {a} times {b}? (question {step})"
    rows = [_chain(root, trace_id, None, "AgentExecutor", start_us, start_us + 900_000,
                   json.dumps({"input": question}), json.dumps({"output": f"{a} times {b} is {a * b}."}))]
    payloads = []
    t = start_us + 1000
    for turn in range(2):
        seq, prompt, llm, parser = (str(uuid.uuid4()) for _ in range(4))
        messages = [{"role": "system", "content": "You are a helpful assistant. Use the tools to do arithmetic."},
                    {"role": "human", "content": question}]
        if turn:
            messages += [{"role": "ai", "content": "", "tool_calls": [{"name": "multiply", "args": {"first_int": a, "second_int": b}, "id": f"call_{step}"}]},
                         {"role": "tool", "content": str(a * b), "tool_call_id": f"call_{step}"}]
        tin, tout = rng.randint(150, 400), rng.randint(15, 40)
        cost = (tin * 0.15 + tout * 0.60) / 1e6
        tool_calls = None if turn else json.dumps([{"name": "multiply", "args": {"first_int": a, "second_int": b}, "id": f"call_{step}"}])
        content = f"{a} times {b} is {a * b}." if turn else ""
        rows.append(_chain(seq, trace_id, root, "RunnableSequence", t, t + 400_000, json.dumps({"input": question}), json.dumps({"output": content})))
        rows.append(_chain(prompt, trace_id, seq, "ChatPromptTemplate", t + 100, t + 300, json.dumps({"input": question}), None))
        rows.append((llm, trace_id, seq, "llm", "ChatOpenAI", t + 500, t + 390_000, "ok", None, None,
                     json.dumps({"messages": messages}), json.dumps({"content": content}), None, None,
                     "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "openai", tin, tout, 0, 0, "tool_calls" if not turn else "stop",
                     tool_calls, t + 200_000, cost, 1, None, None, 1))
        payloads.append((llm, json.dumps({"model": "gpt-4o-mini", "messages": messages, "stream": True}),
                         json.dumps({"chunks": [{"choices": [{"delta": {"content": content}}]}], "usage": {"prompt_tokens": tin, "completion_tokens": tout}})))
        rows.append(_chain(parser, trace_id, seq, "ToolsAgentOutputParser", t + 390_100, t + 390_300, None, None))
        t += 400_000
        if not turn:
            rows.append((str(uuid.uuid4()), trace_id, root, "tool", "multiply", t, t + 50, "ok", None, None,
                         json.dumps({"first_int": a, "second_int": b}), json.dumps(a * b), *_NULLS_AFTER_OUTPUTS, 0, None, None, None))
            t += 1000
    return rows, payloads


def generate_steps(directory: Path, steps: int, seed: int = 2) -> str:
    """Add a long run's trace to DIR/traces.db: STEPS top-level agent steps, 10 spans each; returns its id."""
    from llmtrace.model import Trace
    from llmtrace.redact import Redactor
    from llmtrace.store import open_store
    from llmtrace.store.schema import SPAN_COLUMNS
    from llmtrace.store.writer import StoreWriter

    rng = random.Random(seed)
    db = open_store(directory / "traces.db")
    db.execute("PRAGMA synchronous = OFF")
    insert = f"INSERT INTO spans ({', '.join(SPAN_COLUMNS)}) VALUES ({', '.join('?' * len(SPAN_COLUMNS))})"
    w = StoreWriter(db, Redactor())
    trace_id = str(uuid.uuid4())
    now = int(time.time() * 1e6)
    start = now - steps * 1_000_000 - 3_600_000_000
    w.start_trace(Trace(id=trace_id, name="long_run.py", start_us=start, pid=1, tags={"kind": "long-run"}))
    db.execute("BEGIN")
    for i in range(steps):
        rows, payloads = _steps_rows(trace_id, start + 1000 + i * 1_000_000, i, rng)
        db.executemany(insert, rows)
        db.executemany("INSERT INTO payloads VALUES (?,?,?)", payloads)
        if i % 2000 == 1999:
            db.execute("COMMIT")
            db.execute("BEGIN")
    db.execute("COMMIT")
    w.finish_trace(Trace(id=trace_id, name="long_run.py", start_us=start, end_us=start + steps * 1_000_000 + 2000,
                         status="ok", exit_code=0))
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("ANALYZE")
    db.close()
    return trace_id


def generate(directory: Path, traces: int, spans: int, big: int, seed: int = 1) -> str:
    from llmtrace.store import open_store
    from llmtrace.store.schema import SPAN_COLUMNS
    from llmtrace.store.writer import StoreWriter
    from llmtrace.model import Trace
    from llmtrace.redact import Redactor

    rng = random.Random(seed)
    db = open_store(directory / "traces.db")
    db.execute("PRAGMA synchronous = OFF")
    now = int(time.time() * 1e6)
    per_trace = max(2, spans // traces)
    insert = f"INSERT INTO spans ({', '.join(SPAN_COLUMNS)}) VALUES ({', '.join('?' * len(SPAN_COLUMNS))})"
    db.execute("BEGIN")
    for t in range(traces):
        tid = str(uuid.uuid4())
        start = now - rng.randint(0, 60 * 86400) * 1_000_000
        db.execute("INSERT INTO traces (id, name, start_us, end_us, status, exit_code, pid, version) VALUES (?,?,?,?,?,?,?,?)",
                   (tid, rng.choice(NAMES), start, start + per_trace * 1000, rng.choice(["ok"] * 9 + ["error"]), 0, 1, "bench"))
        if t % 3 == 0:
            db.execute("INSERT INTO trace_tags VALUES (?, 'team', ?)", (tid, rng.choice(["core", "ml", "support"])))
        rows, payloads = _spans_for(tid, start, per_trace, rng)
        db.executemany(insert, rows)
        db.executemany("INSERT INTO payloads VALUES (?,?,?)", payloads)
        if t % 5000 == 4999:
            db.execute("COMMIT")
            db.execute("BEGIN")
    db.execute("COMMIT")
    db.execute("BEGIN")
    db.execute(
        """UPDATE traces SET llm_calls = t.llm_calls, tool_calls = t.tool_calls, input_tokens = t.input_tokens,
             output_tokens = t.output_tokens, cost = t.cost, unpriced_calls = t.unpriced_calls,
             cache_hits = t.cache_hits, cost_saved = t.cost_saved
           FROM span_totals t WHERE t.trace_id = traces.id"""
    )
    db.execute("COMMIT")
    w = StoreWriter(db, Redactor())
    big_id = str(uuid.uuid4())
    w.start_trace(Trace(id=big_id, name="big_agent.py", start_us=now - 3_600_000_000, pid=1))
    rows, payloads = _spans_for(big_id, now - 3_600_000_000, big, rng)
    db.execute("BEGIN")
    db.executemany(insert, rows)
    db.executemany("INSERT INTO payloads VALUES (?,?,?)", payloads)
    db.execute("COMMIT")
    w.finish_trace(Trace(id=big_id, name="big_agent.py", start_us=now - 3_600_000_000, end_us=now, status="ok", exit_code=0))
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("ANALYZE")
    db.close()
    return big_id


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("directory", type=Path)
    ap.add_argument("--traces", type=int, default=100_000)
    ap.add_argument("--spans", type=int, default=1_000_000)
    ap.add_argument("--big", type=int, default=5000)
    ap.add_argument("--steps", type=int, default=0, help="also a trace of this many top-level steps (10 spans each)")
    a = ap.parse_args()
    t0 = time.time()
    print(generate(a.directory, a.traces, a.spans, a.big))
    if a.steps:
        print(generate_steps(a.directory, a.steps))
    print(f"generated in {time.time() - t0:.1f}s", file=sys.stderr)
