"""A fast smoke run of the benchmark code (no timing is asserted: figures live in docs/benchmarks.md)."""

from __future__ import annotations

import sys

from conftest import ROOT, need_browser, run_cli

sys.path.insert(0, str(ROOT))


def test_recording_bench_runs():
    from bench import bench_record

    r = bench_record.measure(quick=True)
    assert r["spooled_us"] > 0 and r["spans_per_invoke"] == 1


def test_writers_bench_loses_nothing():
    from bench import bench_writers

    r = bench_writers.measure(quick=True, processes=3)
    assert r["lost"] == 0 and r["errors"] == 0 and r["spool_files_left"] == 0


def test_generated_store_is_readable(tmp_path, monkeypatch):
    from bench.gen_store import generate

    big = generate(tmp_path, traces=200, spans=2000, big=300)
    monkeypatch.setenv("LLMTRACE_HOME", str(tmp_path))
    assert run_cli("ls", "--limit", "5").code == 0
    shown = run_cli("show", big[:8], "--all")
    assert shown.code == 0 and shown.stdout.count("multiply(") >= 100
    assert "gpt-4o-mini-2024-07-18" in run_cli("cost", "--since", "90d").stdout


def test_view_bench_runs():
    from bench import bench_view

    need_browser("the view bench needs")
    r = bench_view.measure(quick=True)
    assert 0 < r["html_mb"] < 1 and r["load_s"] > 0 and r["search_hits"] > 0


def test_peers_bench_runs():
    """Three rows of the peer comparison, tiny sizes, no peer venv (those are a full run's)."""
    from bench import bench_peers

    r = bench_peers.measure(quick=True, calls=2, rounds=1, only=("llmtrace-hit",))
    rows = r["rows"]
    assert set(rows) == {"python", "llmtrace-miss", "llmtrace-hit"}
    for row in ("llmtrace-miss", "llmtrace-hit"):
        assert rows[row]["loop_llm_spans"] == [3] and rows[row]["agent_llm_spans"] == [8], row
    assert rows["llmtrace-hit"]["loop_hits"] == [3]
    assert "every call a hit" in bench_peers.report(r)


def test_instruction_counts_repeat_so_the_instructions_bench_can_subtract_them(tmp_path):
    """bench_instructions.py takes a call's work as the difference of two processes' instruction counts
    under valgrind: that holds only if a process's count repeats from run to run, and grows with work."""
    import os
    import shutil

    if shutil.which("valgrind") is None:
        from conftest import skip_unless_ci

        skip_unless_ci("valgrind is not installed")
    from bench.bench_instructions import count

    env = {**os.environ, "PYTHONHASHSEED": "0"}
    loop = "import json\nfor i in range({}): json.dumps({{'n': i, 'text': 'x' * i}})\n"
    counts = [count([sys.executable, "-S", "-c", loop.format(n)], env, str(tmp_path), "python")["instructions"]
              for n in (1000, 1000, 3000)]
    assert abs(counts[0] - counts[1]) < counts[0] * 1e-4, counts
    assert counts[2] - counts[0] > 2000 * 500, counts  # 2,000 more encodes: well over 500 instructions each


def _ld(field: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    size, n = b"", len(payload)
    while n >= 0x80:
        size, n = size + bytes([n & 0x7F | 0x80]), n >> 7
    return bytes([field << 3 | 2]) + size + bytes([n]) + payload


def test_sink_counts_otlp_spans_by_scope():
    """The server bench's sink walks OTLP protobuf without a protobuf library: spans by scope, the
    fields it does not read (varints, fixed64) skipped."""
    from bench.sink import otlp_spans

    span = _ld(1, b"t" * 16) + bytes([7 << 3 | 1]) + b"\x01" * 8 + bytes([6 << 3, 0x96, 0x01]) + _ld(5, b"chain")
    lang = _ld(1, _ld(1, b"openinference.instrumentation.langchain")) + _ld(2, span) + _ld(2, span)
    other = _ld(1, _ld(1, b"fastapi")) + _ld(2, span)
    request = _ld(1, _ld(1, _ld(1, b"resource")) + _ld(2, lang)) + _ld(1, _ld(2, other) + _ld(2, lang))
    assert otlp_spans(request) == {"openinference.instrumentation.langchain": 4, "fastapi": 1}


def test_sink_counts_the_runs_langsmith_really_sends(tmp_path, mock_server):
    """LangChain's own tracer, switched on by environment only, sends to the sink what it sends to
    LangSmith (GET /info, then zstd multipart batches): three runs for each invoke of the app's chain."""
    import os
    import subprocess

    from conftest import AGENTS, HANG, server_env

    from bench.sink import Sink

    server = mock_server()
    with Sink() as sink:
        env = {**os.environ, **server_env(server), "LANGSMITH_TRACING": "true", "LANGSMITH_ENDPOINT": sink.url,
               "LANGSMITH_API_KEY": "bench", "LANGSMITH_PROJECT": "bench"}
        code = ("import uvicorn_app\nfor n in range(4):\n    uvicorn_app.ask(n, 'u')\n"
                "from langchain_core.tracers.langchain import wait_for_all_tracers\nwait_for_all_tracers()\n")
        p = subprocess.run([sys.executable, "-c", code], cwd=str(AGENTS), env=env, capture_output=True, text=True,
                           timeout=120, check=False)
        assert p.returncode == 0, p.stderr
        counts = sink.counts(runs=12, wait=HANG)  # a request the client sent as it ended may still be read
    assert counts["runs"] == 12 and counts["decode_errors"] == 0, counts
    assert counts["paths"].get("GET /info") == 1 and counts["paths"].get("POST /runs/multipart", 0) >= 1, counts
    assert counts["bytes"] > 0


def test_helper_rows_bench_stores_every_trace():
    """The helper's per-part bench records real split traces, replays their spool records into fresh
    stores (with and without the indexes) and stores every trace (it raises on one missing)."""
    from bench import bench_helper_rows

    r = bench_helper_rows.measure(traces=80, rounds=1, drop=True)
    assert set(r) == set(bench_helper_rows.VARIANTS)
    assert all(parts["rows"] > 0 and parts["total"] >= parts["rows"] for parts in r.values())
