"""Requests per second of a LangChain server: plain, under llmtrace, and under the tracers users pick instead.

The FastAPI app of the tests (tests/agents/uvicorn_app.py: uvicorn, workers=2, each request a
LangChain chain `prompt | ChatOpenAI` calling the scripted server) is served each way in turn, plain
first, for `pairs` rounds. Each serving gets a warm-up, then REQUESTS requests, CONCURRENCY at once
(keep-alive connections from client threads); its figure is requests per second over those requests.
A way's ratio to plain is taken round by round (machine drift hits all alike) and its median reported:
1.0 means the tracer costs the server nothing it can see; llmtrace's target is >= 0.95. The ways
(bench/server_peers.py says exactly how each is set up):

- plain: `python uvicorn_app.py`;
- noop: a LangChain callback handler that does nothing in every worker: the floor under any callback
  tracer (LangSmith, Langfuse, llmtrace's LangChain spans);
- traced: `llmtrace run --split --no-cache`;
- langsmith: LangChain's own tracer, switched on by environment (LANGSMITH_TRACING=true, …), batched
  zstd multipart uploads from a background thread;
- openinference: openinference-instrumentation-langchain, OTel SDK BatchSpanProcessor, OTLP/HTTP
  protobuf (what `phoenix.otel.register(batch=True)` sets up), in a venv of its own. Its provider is
  the global one, which also switches on FastAPI's native tracing (four more spans a request);
  openinference-local keeps it out of the global slot: LangChain's spans only;
- langfuse: langfuse's LangChain CallbackHandler for the whole process, OTLP/HTTP gzip in the
  background, in a venv of its own.

The peers export to a local sink (bench/sink.py, a process of its own) that answers what their clients
need and counts requests, bytes and the runs or spans in them. Before each CPU reading the bench waits
until the tracer's output has arrived (the sink holds every run or span the requests made, then one
quiet second; llmtrace's store holds every LLM span), at most 60 s: the figures count the export of
the requests measured, not of the warm-up. Beside the ratio, the CPU milliseconds a request costs, by
group of processes: `server` (the server's session: uvicorn, its workers, llmtrace's run), `helper`
(llmtrace's store helpers), `sink`, `bench` (the clients and the scripted provider). What each serving
sent is reported; a row whose tracer sent less than its requests made is marked INCOMPLETE, and one
that sent nothing makes the bench exit 1.

    python bench/bench_server.py                # every way available, 5 rounds, 400 requests each, latency 20 ms
    python bench/bench_server.py --ways traced,langsmith   # plain always runs
    python bench/bench_server.py --latency-ms 0 # the provider answers at once: a tracer's cost at its most visible
    python bench/bench_server.py --quick        # 1 round, 60 requests; makes no venv (uses those there)

The peer venvs (openinference, langfuse) are made with uv under bench/.venvs on first use (never by
--quick); a way whose venv cannot be made is skipped with one line saying why. Whole processes, timed from
outside (A B A B …, median of the pairwise ratios of wall time: the inverse of the rps ratio, start-up
included), one serving per process:

    farm-bench -n 8 --timeout 900 --vs "python bench/bench_server.py --once plain" -- python bench/bench_server.py --once langsmith
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import median  # noqa: E402
from bench.server_peers import APP, SCOPES, SINKS, UNITS, WAYS, base_env, command, interpreters, stored_llm_spans  # noqa: E402
from bench.sink import Sink  # noqa: E402

SETTLE_S = 60.0  # the longest wait for a tracer's backlog
QUIET_S = 1.0  # the sink's quiet time that says an exporter is done


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(conn: http.client.HTTPConnection, path: str) -> dict:
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    if r.status != 200:
        raise RuntimeError(f"{path}: HTTP {r.status} {body[:200]!r}")
    return json.loads(body)


def _load(port: int, requests: int, concurrency: int, first: int) -> float:
    """Requests per second for `requests` requests from `concurrency` keep-alive clients."""
    counter = iter(range(first, first + requests))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            while True:
                with lock:
                    n = next(counter, None)
                if n is None:
                    return
                _get(conn, f"/ask/{n}?user=bench")
        except BaseException as e:  # reported after the run
            errors.append(e)
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{len(errors)} clients failed: {errors[0]!r}")
    return requests / elapsed


def _cpu_by_group(session: int, sink: int | None = None) -> dict[str, int]:
    """CPU clock ticks so far of the processes a serving uses, by group: `server` (every process of the
    session the server was started in: uvicorn, its workers, llmtrace's run), `helper` (llmtrace's
    store helpers, in sessions of their own), `sink` (the peers' sink), `bench` (this process: the
    clients and the scripted provider). Linux only ({} elsewhere)."""
    out: dict[str, int] = {}
    try:
        pids = [d for d in os.listdir("/proc") if d.isdigit()]
    except OSError:
        return out
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue  # gone meanwhile
        if int(pid) == os.getpid():
            group = "bench"
        elif int(pid) == sink:
            group = "sink"
        elif b"llmtrace.store.helper" in cmdline:
            group = "helper"
        elif int(fields[3]) == session:  # the session id
            group = "server"
        else:
            continue
        out[group] = out.get(group, 0) + int(fields[11]) + int(fields[12])  # utime + stime
    return out


Progress = Callable[[], tuple[int, int, int, int]]  # a tracer's output so far: (units, requests, bytes, other spans)


def _progress(way: str, home: str, sink: Sink | None) -> Progress | None:
    if way == "traced":
        return lambda: (stored_llm_spans(home), 0, 0, 0)
    if way in SINKS and sink is not None:
        def got() -> tuple[int, int, int, int]:
            c = sink.counts()
            if way not in SCOPES:
                return c["runs"], c["requests"], c["bytes"], 0
            own = c["scopes"].get(SCOPES[way], 0)
            return own, c["requests"], c["bytes"], c["spans"] - own
        return got
    return None


def _settle(progress: Progress, target: int) -> tuple[int, int, int, int]:
    """Wait until `target` units have arrived and nothing more came for QUIET_S (at most SETTLE_S)."""
    deadline = time.monotonic() + SETTLE_S
    last, since = progress(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = progress()
        if now != last:
            last, since = now, time.monotonic()
        elif last[0] >= target and time.monotonic() - since >= QUIET_S:
            break
    return last


def _serve(cmd: list[str], env: dict[str, str], port: int, requests: int, concurrency: int,
           progress: Progress | None = None, per_request: int = 0, sink_pid: int | None = None,
           label: str = "") -> dict[str, Any]:
    """One serving: {"rps", "cpu": ms a request by group, "sent": what its tracer delivered}."""
    start = progress() if progress else (0, 0, 0, 0)
    err = tempfile.TemporaryFile("w+")  # not a pipe: a tracer's warnings must never fill it and stall a worker
    proc = subprocess.Popen(cmd, env={**base_env(), **env}, cwd=str(APP.parent), stdout=subprocess.DEVNULL,
                            stderr=err, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:  # up when it answers
            try:
                _get(http.client.HTTPConnection("127.0.0.1", port, timeout=5), "/pid")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.wait()
                    err.seek(0)
                    raise RuntimeError(f"the server did not start: {err.read()[-2000:]}")
                time.sleep(0.1)
        warm = max(40, requests // 10)
        _load(port, warm, concurrency, 100_000)  # warm-up: imports, connections, both workers
        if progress:
            _settle(progress, start[0] + warm * per_request)
        before = _cpu_by_group(proc.pid, sink_pid)
        rps = _load(port, requests, concurrency, 0)
        end = _settle(progress, start[0] + (warm + requests) * per_request) if progress else start
        after = _cpu_by_group(proc.pid, sink_pid)
        tick = os.sysconf("SC_CLK_TCK")
        cpu = {g: (after[g] - before.get(g, 0)) / tick / requests * 1e3 for g in after}
        sent = {"units": end[0] - start[0], "expected": (warm + requests) * per_request,
                "requests": end[1] - start[1], "bytes": end[2] - start[2], "other_spans": end[3] - start[3]}
        if sent["units"] < sent["expected"]:
            err.seek(0)
            print(f"  {label}: its tracer delivered {sent}; the server's stderr ends: {err.read()[-1000:]!r}",
                  file=sys.stderr)
        return {"rps": rps, "cpu": cpu, "sent": sent if progress else None}
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C, as a terminal sends it
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        err.close()


def measure(quick: bool = False, pairs: int = 5, requests: int = 400, concurrency: int = 10,
            latency_ms: float = 20.0, ways: list[str] | None = None, log: Any = None) -> dict[str, Any]:
    """`ways`: which of WAYS to serve (default all; plain always). Peer venvs are made unless `quick`."""
    from llmtrace.mock import MockServer, Script

    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    if quick:
        pairs, requests = 1, 60
    wanted = [w for w in WAYS if w == "plain" or w in (ways or WAYS)]
    pythons, skipped = interpreters(wanted, create=not quick)
    for way, why in skipped.items():
        say(f"  {way}: skipped, {why}")
    wanted = [w for w in wanted if w in pythons]
    home = tempfile.mkdtemp()
    runs: dict[str, list[dict[str, Any]]] = {way: [] for way in wanted}
    t0 = time.perf_counter()
    with MockServer(Script.from_dict({"latency_ms": latency_ms})) as server, \
            (Sink() if any(w in SINKS for w in wanted) else _NoSink()) as sink:
        env = {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "bench", "LLMTRACE_HOME": home}
        for rnd in range(pairs):
            for way in wanted:  # in turn, each round: machine drift hits all alike
                runs[way].append(_serve_way(way, pythons[way], env, home, sink, requests, concurrency))
            say(f"  round {rnd + 1}/{pairs} done ({time.perf_counter() - t0:.0f} s)")
    return summarize(runs, skipped, pairs=pairs, requests=requests, concurrency=concurrency, latency_ms=latency_ms)


class _NoSink:
    url = pid = None

    def __enter__(self) -> _NoSink:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _serve_way(way: str, python: str, env: dict[str, str], home: str, sink: Any, requests: int,
               concurrency: int) -> dict[str, Any]:
    port = _port()
    cmd, extra = command(way, python, port, home, sink.url)
    return _serve(cmd, {**env, **extra}, port, requests, concurrency, _progress(way, home, sink if sink.url else None),
                  UNITS.get(way, ("", 0))[1], sink.pid, way)


def summarize(runs: dict[str, list[dict[str, Any]]], skipped: dict[str, str], **params: Any) -> dict[str, Any]:
    out: dict[str, Any] = {**params, "skipped": skipped, "sent": {}}
    plain = [r["rps"] for r in runs["plain"]]
    for way, rows in runs.items():
        out[f"{way}_rps"] = median([r["rps"] for r in rows])
        out[f"{way}_rps_rounds"] = [round(r["rps"], 1) for r in rows]
        if way != "plain":
            ratios = [r["rps"] / p for r, p in zip(rows, plain)]
            out[f"{way}_ratio"], out[f"{way}_ratio_range"] = median(ratios), (min(ratios), max(ratios))
        for group in sorted({g for r in rows for g in r["cpu"]}):  # CPU ms a request, medians over the servings
            out[f"{way}_cpu_ms_{group}"] = median([r["cpu"].get(group, 0.0) for r in rows])
        if rows[0]["sent"] is not None:
            out["sent"][way] = [r["sent"] for r in rows]
    out["ratio"] = out.get("traced_ratio")  # the names earlier figures were reported under
    return out


def _sent(way: str, sent: list[dict[str, Any]] | None) -> str:
    if not sent:
        return "—"
    unit, _ = UNITS[way]
    units, expected = [s["units"] for s in sent], sent[0]["expected"]
    got = ", ".join(f"{u:,}" for u in units)
    if all(u == expected for u in units):
        text = f"{expected:,} of {expected:,} {unit} (all), each serving"
    elif any(u < expected for u in units):
        text = f"**INCOMPLETE**: {got} of {expected:,} {unit}"
    else:
        text = f"{got} {unit}, more than the {expected:,} its requests made"
    if way in SINKS:
        other = median([s["other_spans"] for s in sent])
        text += (f"; {median([s['requests'] for s in sent]):.0f} requests, "
                 f"{median([s['bytes'] for s in sent]) / 1024:,.0f} kB a serving"
                 + (f"; other tracers' spans beside them: {other:,.0f}" if other else ""))
    return text


def report(r: dict[str, Any]) -> str:
    ways = [w for w in WAYS if f"{w}_rps" in r]
    groups = [g for g in ("server", "helper", "sink", "bench") if any(f"{w}_cpu_ms_{g}" in r for w in ways)]
    lines = [f"{r['pairs']} round(s), {r['requests']} requests a serving, {r['concurrency']} at once, "
             f"scripted LLM latency {r['latency_ms']:g} ms; medians over the rounds",
             "", f"| way | rps | ÷ plain (min–max) | CPU ms a request: {' / '.join(groups)} | what its tracer sent (warm-up included) |",
             "|---|---|---|---|---|"]
    for w in ways:
        cpu = " / ".join(f"{r.get(f'{w}_cpu_ms_{g}', 0.0):.2f}" for g in groups)
        lo, hi = r.get(f"{w}_ratio_range", (1, 1))
        ratio = "1 (baseline)" if w == "plain" else f"{r[f'{w}_ratio']:.3f} ({lo:.2f}–{hi:.2f})"
        lines.append(f"| {w} | {r[f'{w}_rps']:.1f} | {ratio} | {cpu} | {_sent(w, r['sent'].get(w))} |")
    lines += [f"| {w} | skipped: {why} | | | |" for w, why in r["skipped"].items()]
    return "\n".join(lines)


def silent(r: dict[str, Any]) -> list[str]:
    """The ways with a serving whose tracer delivered nothing."""
    return [w for w, sent in r["sent"].items() if any(s["units"] == 0 for s in sent)]


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 round, 60 requests; no peer venv made")
    ap.add_argument("--pairs", type=int, default=5, help="rounds (each serves every way once)")
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--concurrency", type=int, default=10)
    ap.add_argument("--latency-ms", type=float, default=20.0)
    ap.add_argument("--ways", help=f"comma-separated, of {','.join(WAYS)} (default all available; plain always runs)")
    ap.add_argument("--once", choices=WAYS, help="serve once, this way, and print its requests per second")
    ap.add_argument("--json", type=Path, help="also write the raw figures here")
    a = ap.parse_args()
    chosen = [w.strip() for w in a.ways.split(",") if w.strip()] if a.ways else None
    if chosen is not None and (bad := [w for w in chosen if w not in WAYS]):
        ap.error(f"unknown way {bad[0]!r} (choose from {', '.join(WAYS)})")
    if a.once:
        from llmtrace.mock import MockServer, Script

        pythons, skipped = interpreters([a.once], create=True)
        if a.once in skipped:
            sys.exit(f"bench_server: {a.once} skipped, {skipped[a.once]}")
        with MockServer(Script.from_dict({"latency_ms": a.latency_ms})) as mock, \
                (Sink() if a.once in SINKS else _NoSink()) as sink:
            scratch = tempfile.mkdtemp()
            env = {"OPENAI_BASE_URL": mock.base_url, "OPENAI_API_KEY": "bench", "LLMTRACE_HOME": scratch}
            one = _serve_way(a.once, pythons[a.once], env, scratch, sink, a.requests, a.concurrency)
            print(f"{a.once} rps {one['rps']:.1f}" + (f"; sent {one['sent']}" if one["sent"] else ""))
        sys.exit(1 if one["sent"] is not None and one["sent"]["units"] == 0 else 0)
    res = measure(a.quick, a.pairs, a.requests, a.concurrency, a.latency_ms, chosen)
    if a.json:
        a.json.write_text(json.dumps(res, indent=1))
    print(report(res))
    if quiet := silent(res):
        sys.exit(f"bench_server: {', '.join(quiet)} sent nothing in a serving: its figures measure no tracing")
