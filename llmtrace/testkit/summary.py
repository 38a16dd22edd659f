"""The lines `pytest --llmtrace` ends with: per test and in total, LLM calls, tokens, cost, replayed."""

from __future__ import annotations

from typing import Any


def _cost(value: float) -> str:
    if not value:
        return "$0"
    return f"${value:.4f}" if value >= 0.01 else f"${value:.6f}".rstrip("0")


def lines(results: dict[str, dict[str, Any]], run_id: str, mode: str, verbose: bool = False, width: int = 60) -> list[str]:
    """Tests with LLM calls one a line (all of them with -v; else the 20 costliest), then the total."""
    with_calls = {k: v for k, v in results.items() if v.get("calls")}
    shown = sorted(with_calls.items(), key=lambda kv: (-kv[1].get("cost", 0), -kv[1].get("tokens", 0), kv[0]))
    if not verbose:
        shown = shown[:20]
    out = []
    if shown:
        out.append(f"{'test':<{width}} {'calls':>5} {'tokens':>8} {'cost':>9} {'replayed':>8}")
    for nodeid, s in sorted(shown):
        name = nodeid if len(nodeid) <= width else "…" + nodeid[-(width - 1):]
        out.append(f"{name:<{width}} {s['calls']:>5} {s['tokens']:>8} {_cost(s['cost']):>9} {s['replayed']:>8}")
    if len(with_calls) > len(shown):
        out.append(f"… and {len(with_calls) - len(shown)} more tests with LLM calls (-v shows all)")
    calls = sum(s.get("calls", 0) for s in results.values())
    tokens = sum(s.get("tokens", 0) for s in results.values())
    cost = sum(s.get("cost", 0.0) for s in results.values())
    replayed = sum(s.get("replayed", 0) for s in results.values())
    refused = sum(s.get("refused", 0) for s in results.values())
    written = sum(1 for s in results.values() if s.get("written"))
    out.append(f"total: {len(results)} tests, {len(with_calls)} with LLM calls: {calls} calls, {tokens} tokens, "
               f"{_cost(cost)}, {replayed} replayed, {calls - replayed - refused} live"
               + (f", {refused} refused (no recorded answer)" if refused else ""))
    if written:
        out.append(f"answers recorded for {written} test{'s' if written != 1 else ''} (record mode {mode}): review them "
                   "in recorded_answers/")
    out.append(f"traces: llmtrace ls --run {run_id[:8]}")
    return out
