"""`llmtrace reprice`: stored calls' costs computed again from the prices known now.

A call is priced when its span ends, with the prices known then; a model added to prices.json later (or
priced by a newer genai-prices) leaves the earlier calls as they were. This recomputes them from the
token counts and model names the spans hold, and the totals of the traces they belong to. The price
function is handed in (the store imports no pricing code).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any, Callable

from llmtrace.store.db import transaction
from llmtrace.store.writer import store_totals

Price = Callable[[Any, Any, Any, Any, Any], "float | None"]  # (model, provider, input, output, cached) → USD


@dataclass
class Repriced:
    calls: int = 0  # LLM and embedding calls looked at
    changed: int = 0  # whose cost (or, for a cache hit, what it saved) changed
    newly_priced: int = 0  # unpriced before, priced now
    unpriced: dict[str, int] = field(default_factory=dict)  # still unpriced: model name (as recorded) → calls
    traces: int = 0  # traces whose totals changed


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= 1e-12 * max(1.0, abs(a), abs(b))


def reprice(db: sqlite3.Connection, trace_ids: list[str] | None, since_us: int | None, until_us: int | None,
            price: Price) -> Repriced:
    """Reprice the calls of `trace_ids` (None: every trace started in [since_us, until_us))."""
    where, args = ["s.kind IN ('llm', 'embedding')"], []
    if trace_ids is not None:
        where.append(f"s.trace_id IN ({','.join('?' * len(trace_ids))})")
        args += trace_ids
    if since_us is not None:
        where.append("t.start_us >= ?")
        args.append(since_us)
    if until_us is not None:
        where.append("t.start_us < ?")
        args.append(until_us)
    out = Repriced()
    updates: list[tuple[Any, Any, str]] = []
    touched: set[str] = set()
    with transaction(db):
        rows = db.execute(
            f"""SELECT s.id, s.trace_id, s.model, s.model_requested, s.name, s.provider, s.input_tokens, s.output_tokens,
                       s.cached_tokens, s.cache_hit, s.cost, s.cost_saved, s.status
                FROM spans s JOIN traces t ON t.id = s.trace_id WHERE {" AND ".join(where)}""",
            args,
        ).fetchall()
        for sid, tid, model, requested, name, provider, inp, outp, cached, hit, cost, saved, status in rows:
            out.calls += 1
            new = price(model or requested, provider, inp, outp, cached)
            new_cost, new_saved = (0.0, new) if hit else (new, saved)
            was_priced = (saved if hit else cost) is not None
            if new is None and status != "error":
                label = model or requested or name or "(unknown)"
                out.unpriced[label] = out.unpriced.get(label, 0) + 1
            if _same(new_cost, cost) and _same(new_saved, saved):
                continue
            if new is None and was_priced:
                continue  # priced when it ran, unknown now (prices.json lost an entry): the price it had stands
            out.changed += 1
            out.newly_priced += not was_priced
            updates.append((new_cost, new_saved, sid))
            touched.add(tid)
        db.executemany("UPDATE spans SET cost = ?, cost_saved = ? WHERE id = ?", updates)
        store_totals(db, sorted(touched), ended_only=True)
    out.traces = len(touched)
    return out
