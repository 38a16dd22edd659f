"""Requests per second of a traced server against the untraced one.

The FastAPI app of the tests (tests/agents/uvicorn_app.py: uvicorn, workers=2, each request a
LangChain chain calling the scripted server) is served plain (`python uvicorn_app.py`) and under
`llmtrace run --split --no-cache` in turn, plain first, for `pairs` pairs. Each serving gets a
warm-up, then REQUESTS requests, CONCURRENCY at once (keep-alive connections from client threads);
its figure is requests per second over those requests. The ratio traced ÷ plain is taken pair by
pair (machine drift hits both alike) and its median reported: 1.0 means tracing costs the server
nothing it can see; the target is ≥ 0.95. A third serving each round, `noop`, has a LangChain
callback handler that does nothing in every worker: the floor under any callback tracer (LangSmith,
Langfuse, llmtrace's LangChain spans), reported as `noop_ratio`. Beside it, the CPU milliseconds a request costs, by group of
processes (the server's, llmtrace's store helpers, this bench's clients and scripted provider): the
cost tracing adds, whether or not the rps shows it (the helpers run at nice 19, on what the server
leaves idle).

    python bench/bench_server.py                # 5 pairs, 400 requests each, scripted latency 20 ms
    python bench/bench_server.py --latency-ms 0 # the provider answers at once: llmtrace's cost at its most visible
    python bench/bench_server.py --quick

Whole processes, timed from outside (A B A B …, median of the pairwise ratios of wall time: the
inverse of the rps ratio, start-up included), one serving per process:

    farm-bench -n 8 --timeout 900 --vs "python bench/bench_server.py --once plain" -- python bench/bench_server.py --once traced
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import PY, ROOT, llmtrace, median  # noqa: E402

APP = ROOT / "tests" / "agents" / "uvicorn_app.py"


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


def _cpu_by_group(session: int) -> dict[str, int]:
    """CPU clock ticks so far of the processes a serving uses, by group: `server` (every process of the
    session the server was started in: uvicorn, its workers, llmtrace's run), `helper` (llmtrace's
    store helpers, in sessions of their own), `bench` (this process: the clients and the scripted
    provider). Linux only ({} elsewhere)."""
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
        elif b"llmtrace.store.helper" in cmdline:
            group = "helper"
        elif int(fields[3]) == session:  # the session id
            group = "server"
        else:
            continue
        out[group] = out.get(group, 0) + int(fields[11]) + int(fields[12])  # utime + stime
    return out


def _serve(cmd: list[str], env: dict[str, str], port: int, requests: int, concurrency: int,
           cpu: dict[str, float] | None = None) -> float:
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=str(APP.parent), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:  # up when it answers
            try:
                _get(http.client.HTTPConnection("127.0.0.1", port, timeout=5), "/pid")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not start: {proc.communicate()[1][-2000:]}")
                time.sleep(0.1)
        _load(port, max(40, requests // 10), concurrency, 100_000)  # warm-up: imports, connections, both workers
        before = _cpu_by_group(proc.pid)
        rps = _load(port, requests, concurrency, 0)
        after = _cpu_by_group(proc.pid)
        if cpu is not None:  # milliseconds of CPU a request, by group
            tick = os.sysconf("SC_CLK_TCK")
            for group in after:
                cpu[group] = (after[group] - before.get(group, 0)) / tick / requests * 1e3
        return rps
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C, as a terminal sends it
        try:
            proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


WAYS = ("plain", "noop", "traced")


def _command(way: str, port: int, scratch: str) -> tuple[list[str], dict[str, str]]:
    """How to serve the app `way`: plain; `noop`, every worker with a LangChain callback handler that does
    nothing (bench/peer_wrap.py's, registered for the whole process as a callback tracer registers its
    own: the floor any callback tracer stands on, LangSmith's, Langfuse's or llmtrace's); `traced`, under
    `llmtrace run --split`."""
    serve = [str(APP), str(port), "2"]
    if way == "traced":
        return llmtrace("run", "-q", "--split", "--no-cache", *serve), {}
    if way == "noop":  # uvicorn's workers are spawned: a sitecustomize sets the handler up in each
        boot = Path(scratch) / "noop-boot"
        boot.mkdir(exist_ok=True)
        (boot / "sitecustomize.py").write_text(
            f"import sys\nsys.path.insert(0, {str(ROOT / 'bench')!r})\nfrom peer_wrap import noop\nnoop()\n")
        return [PY, *serve], {"PYTHONPATH": os.pathsep.join([str(boot), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    return [PY, *serve], {}


def measure(quick: bool = False, pairs: int = 5, requests: int = 400, concurrency: int = 10,
            latency_ms: float = 20.0) -> dict[str, float]:
    from llmtrace.mock import MockServer, Script

    if quick:
        pairs, requests = 1, 60
    home = tempfile.mkdtemp()
    rps: dict[str, list[float]] = {way: [] for way in WAYS}
    cpu: dict[str, list[dict[str, float]]] = {way: [] for way in WAYS}
    with MockServer(Script.from_dict({"latency_ms": latency_ms})) as server:
        env = {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "bench", "LLMTRACE_HOME": home}
        for _ in range(pairs):
            for way in WAYS:  # in turn, each round: machine drift hits all alike
                port = _port()
                cpu[way].append({})
                command, extra = _command(way, port, home)
                rps[way].append(_serve(command, {**env, **extra}, port, requests, concurrency, cpu[way][-1]))
    out = {"pairs": pairs, "requests": requests, "concurrency": concurrency, "latency_ms": latency_ms,
           **{f"{way}_rps": median(rps[way]) for way in WAYS},
           "ratio": median([t / p for t, p in zip(rps["traced"], rps["plain"])]),
           "noop_ratio": median([n / p for n, p in zip(rps["noop"], rps["plain"])])}
    for way, rows in cpu.items():  # CPU ms a request (medians over the servings), for what the ratio hides or shows
        for group in sorted({g for row in rows for g in row}):
            out[f"{way}_cpu_ms_{group}"] = median([row.get(group, 0.0) for row in rows])
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--concurrency", type=int, default=10)
    ap.add_argument("--latency-ms", type=float, default=20.0)
    ap.add_argument("--once", choices=WAYS, help="serve once, this way, and print its requests per second")
    a = ap.parse_args()
    if a.once:
        from llmtrace.mock import MockServer, Script

        with MockServer(Script.from_dict({"latency_ms": a.latency_ms})) as mock:
            scratch = tempfile.mkdtemp()
            env = {"OPENAI_BASE_URL": mock.base_url, "OPENAI_API_KEY": "bench", "LLMTRACE_HOME": scratch}
            port = _port()
            cmd, extra = _command(a.once, port, scratch)
            print(f"{a.once} rps {_serve(cmd, {**env, **extra}, port, a.requests, a.concurrency):.1f}")
        sys.exit(0)
    for k, v in measure(a.quick, a.pairs, a.requests, a.concurrency, a.latency_ms).items():
        print(f"{k:24s} {v:10.3f}")
