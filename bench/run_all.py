"""Run every benchmark and write the results table.

    python bench/run_all.py                 # full run (~5 minutes on 2 cores), prints the table
    python bench/run_all.py --write docs/benchmarks.md
    python bench/run_all.py --quick         # a smoke run with small sizes (seconds)
    python bench/run_all.py --only peers --write docs/benchmarks.md   # one bench; only its section is rewritten

The main table (between `<!-- results -->` markers) needs every bench but `peers` and
`instructions`; the comparison with other tracers (bench_peers.py, ~10 minutes and two venvs on its
first run) has its own section between `<!-- peers -->` markers, and its per-call work counted in
instructions under valgrind (bench_instructions.py, ~15 minutes; not run by --quick unless named)
between `<!-- instructions -->`. `--write` rewrites the sections whose benches ran and keeps the rest.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import (  # noqa: E402
    bench_cache,
    bench_instructions,
    bench_overhead,
    bench_peers,
    bench_record,
    bench_scale,
    bench_soak,
    bench_view,
    bench_writers,
)

BENCHES = {"record": bench_record, "overhead": bench_overhead, "cache": bench_cache, "writers": bench_writers,
           "scale": bench_scale, "view": bench_view, "soak": bench_soak, "peers": bench_peers,
           "instructions": bench_instructions}
MAIN = ("record", "overhead", "cache", "writers", "scale", "view", "soak")


def table(r: dict[str, dict[str, float]]) -> str:
    rec, ovh, cache, scale, wr, soak = r["record"], r["overhead"], r["cache"], r["scale"], r["writers"], r["soak"]
    view = r["view"]
    plain, nocache, cached = soak["python"], soak["llmtrace --no-cache"], soak["llmtrace (cache on)"]

    def ok(value: float, target: float, lower_is_better: bool = True) -> str:
        if value != value:  # NaN: not measured (no browser here)
            return "not measured"
        good = value <= target if lower_is_better else value >= target
        return "met" if good else "**missed**"

    rows = [
        ("Recording: time added per span in the recording thread (handler → spool line → queue)", f"{rec['spooled_us']:.1f} µs", "≤ 30 µs", ok(rec["spooled_us"], 30), "bench_record.py"),
        ("Recording: all CPU per span until it is in SQLite (writer thread included)", f"{rec['spooled_until_in_sqlite_us']:.1f} µs", "—", "", "bench_record.py"),
        ("Recording: span with ~1.3 kB of prose in and out, all CPU until in SQLite: with the search index / without", f"{rec['prose_until_in_sqlite_us']:.1f} / {rec['prose_until_in_sqlite_no_index_us']:.1f} µs", "—", "", "bench_record.py"),
        ("Recording: the same with one SQLite commit per span (the design we left)", f"{rec['sync_commit_per_span_us']:.1f} µs", "—", "", "bench_record.py"),
        ("Recording: span added inside LangChain (RunnableLambda.invoke, traced − untraced)", f"{rec['langchain_added_per_span_us']:.1f} µs", "—", "", "bench_record.py"),
        (f"Traced ÷ untraced, {ovh['steps']}-step agent loop, zero-latency server, cache off", f"{ovh['ratio']:.3f}", "≤ 1.03 (#16)", ok(ovh["ratio"], 1.03), "bench_overhead.py"),
        ("  … wall time plain / traced", f"{ovh['plain_s']:.2f} s / {ovh['traced_s']:.2f} s", "", "", "bench_overhead.py"),
        ("Cache: math agent, 300 ms server latency, cold / warm wall time", f"{cache['cold_s']:.2f} s / {cache['warm_s']:.2f} s", "", "", "bench_cache.py"),
        ("Cache: requests at the server on the warm run", f"{cache['warm_requests']:.0f}", "0", ok(cache["warm_requests"], 0), "bench_cache.py"),
        ("Cache: speed-up on LLM time (cold ÷ warm)", f"{cache['llm_speedup']:.0f}×", "≥ 50×", ok(cache["llm_speedup"], 50, False), "bench_cache.py"),
        ("Cache: lookup p50 / p99 (key + read, 2,000 entries)", f"{cache['lookup_p50_ms']:.3f} / {cache['lookup_p99_ms']:.3f} ms", "p99 ≤ 2 ms", ok(cache["lookup_p99_ms"], 2), "bench_cache.py"),
        (f"`llmtrace ls` on {scale['traces']:,.0f} traces / {scale['spans']:,.0f} spans", f"{scale['ls_s']:.3f} s", "≤ 0.25 s", ok(scale["ls_s"], 0.25), "bench_scale.py"),
        ("`llmtrace cost --since 30d --by model` on the same store", f"{scale['cost_30d_by_model_s']:.3f} s", "≤ 0.5 s", ok(scale["cost_30d_by_model_s"], 0.5), "bench_scale.py"),
        (f"`llmtrace show` of a {scale['big_trace_spans']:,.0f}-span trace", f"{scale['show_big_s']:.3f} s", "≤ 1 s", ok(scale["show_big_s"], 1), "bench_scale.py"),
        (f"`llmtrace show` of a {scale['long_trace_spans']:,.0f}-span trace ({scale['long_trace_steps']:,.0f} top-level steps, folded)", f"{scale['show_long_s']:.3f} s", "≤ 1 s", ok(scale["show_long_s"], 1), "bench_scale.py"),
        (f"`llmtrace view` of a {view['spans']:,.0f}-span trace: HTML file size (written in {view['write_s']:.2f} s)", f"{view['html_mb']:.2f} MB", "≤ 3 MB", ok(view["html_mb"], 3), "bench_view.py"),
        ("  … opened in headless Chromium: parsed, drawn and laid out (page clock; wall time from Playwright)", f"{view['load_s']:.3f} s ({view['load_wall_s']:.3f} s)", "≤ 1 s", ok(view["load_s"], 1), "bench_view.py"),
        ("  … in the page: a search across its spans / the all-spans toggle", f"{view['search_ms']:.0f} / {view['toggle_all_ms']:.0f} ms", "—", "", "bench_view.py"),
        (f"`llmtrace export` of the {scale['long_trace_spans']:,.0f}-span trace: peak RSS", f"{scale['export_long_peak_mb']:.1f} MB", "—", "", "bench_scale.py"),
        (f"Soak, {cached['calls']:,.0f} calls: RSS growth from the 2,000th call, untraced / --no-cache / cache on", f"{plain['rss_growth_mb']:.1f} / {nocache['rss_growth_mb']:.1f} / {cached['rss_growth_mb']:.1f} MB", "≤ 5 MB", ok(max(nocache["rss_max_mb"] - nocache["rss_base_mb"], cached["rss_max_mb"] - cached["rss_base_mb"]), 5), "bench_soak.py"),
        ("Soak: µs per call, first ÷ last checkpoint (cache on)", f"{cached['us_first']:.0f} / {cached['us_last']:.0f}", "flat", "", "bench_soak.py"),
        ("Soak: largest spool seen (cache on)", f"{cached['spool_max_kb']:,.0f} kB", "bounded", "", "bench_soak.py"),
        ("`llmtrace --help` cold start (floor: `python -c pass`)", f"{scale['help_s']:.3f} s ({scale['python_floor_s']:.3f} s)", "≤ 0.25 s", ok(scale["help_s"], 0.25), "bench_scale.py"),
        (f"Concurrent writers: {wr['processes']:.0f} processes × {wr['spans_per_process']:,.0f} spans, total rate", f"{wr['spans_per_s']:,.0f} spans/s", "≥ 20k/s", ok(wr["spans_per_s"], 20000, False), "bench_writers.py"),
        ("Concurrent writers: spans lost / 'database is locked' errors", f"{wr['lost']:.0f} / {wr['errors']:.0f}", "0 / 0", ok(wr["lost"] + wr["errors"], 0), "bench_writers.py"),
    ]
    out = ["| measure | result | target | | script |", "| --- | --- | --- | --- | --- |"]
    out += [f"| {a} | {b} | {c} | {d} | `bench/{e}` |" for a, b, c, d, e in rows]
    return "\n".join(out)


def replace_section(text: str, marker: str, body: str) -> str:
    start, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
    if start not in text:
        return f"{text.rstrip()}\n\n{start}\n{body}\n{end}\n"
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    return f"{head}{start}\n{body}\n{end}{tail}"


def main() -> None:
    ap = argparse.ArgumentParser(description="Run llmtrace's benchmarks.")
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke run (bench_peers: llmtrace's rows only)")
    ap.add_argument("--only", help=f"comma-separated benches to run, of: {', '.join(BENCHES)}")
    ap.add_argument("--write", type=Path, help="write the markdown tables into this file (between the markers)")
    ap.add_argument("--peers-calls", type=int, help="bench_peers: LLM calls in the loop (default 1,000)")
    ap.add_argument("--peers-rounds", type=int, help="bench_peers: interleaved rounds (default 3)")
    a = ap.parse_args()
    names = [n.strip() for n in a.only.split(",")] if a.only else list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        ap.error(f"unknown bench {', '.join(unknown)}; there are: {', '.join(BENCHES)}")
    t0 = time.time()
    results = {}
    for name in names:
        if name == "instructions" and a.quick and not a.only:
            continue  # minutes under valgrind even at small sizes
        print(f"running {name} …", file=sys.stderr, flush=True)
        if name == "peers":
            results[name] = bench_peers.measure(a.quick, calls=a.peers_calls, rounds=a.peers_rounds)
        elif name == "instructions":
            results[name] = (bench_instructions.measure(5, ("llmtrace-nocache",), create_venvs=False, agent_steps=3) if a.quick
                             else bench_instructions.measure())
        else:
            results[name] = BENCHES[name].measure(a.quick)
    options = [o for o in sys.argv[1:] if o != "--write" and not o.endswith(".md")]
    command = f"`python bench/run_all.py {' '.join(options)}`".replace(" `", "`")
    stamp = (f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.machine()}, Python {platform.python_version()}, "
             f"{'quick' if a.quick else 'full'} run in {time.time() - t0:.0f} s: {command}")
    sections = {}
    if all(n in results for n in MAIN):
        sections["results"] = table(results)
    if "peers" in results:
        sections["peers"] = bench_peers.report(results["peers"])
    if "instructions" in results:
        sections["instructions"] = bench_instructions.report(results["instructions"])
    if not sections:  # a subset of the main table's benches: their raw figures
        sections = {}
        print("\n".join(f"{n}: {results[n]}" for n in results))
    for body in sections.values():
        print(body + "\n")
    print(stamp)
    if a.write:
        text = a.write.read_text() if a.write.exists() else ""
        for marker, body in sections.items():
            text = replace_section(text, marker, f"{body}\n\n{stamp}")
        a.write.write_text(text)


if __name__ == "__main__":
    main()
