"""`pytest --llmtrace`, two figures (issue #35):

1. overhead: a suite of 1,000 tests without LLM calls, `pytest` against `pytest --llmtrace` (target: at
   most 5 % longer). Every test is still a trace of the run.
2. offline: a suite of agent tests (each a create_agent run of 4 model calls) against the scripted
   server answering every call after 200 ms, as a provider would: recorded live
   (`--llmtrace-record all`, every call sent) against replayed offline (`--llmtrace-record none`, no key,
   nothing sent) (target: at least 10x faster).

Whole processes, timed from outside by farm-bench, pairwise (A B A B …): quote the median of the ratios.

    python bench/bench_pytest_plugin.py [--runs N] [--agent-tests N] [--only overhead|offline] [--bytecode]

--bytecode runs the processes as an installed package runs: byte-code compiled by the first run and reused
(PYTHONDONTWRITEBYTECODE dropped, the compiled files in a folder of the bench's own), as bench_peers.py does.
Without it the environment's setting holds. Where PYTHONDONTWRITEBYTECODE is set, pytest cannot keep the
byte-code of the modules it rewrites for assertions, which are every module of an installed pytest plugin's
package (langsmith's 227, hypothesis' 73, anyio's 30 …): each process rewrites and compiles them again, ~7.7 G
instructions, a third of the offline run (bench_pytest_offline_instructions.py, with and without --no-bytecode),
carried by both sides of each ratio; an editable llmtrace checkout is compiled from source too (~0.34 G).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "tests" / "pytest_project"
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"]

AGENT_TEST = '''
import pytest

import agent


@pytest.mark.parametrize("n", range({n}))
def test_agent(n):
    question = f"What is 3 to the fifth power times 36, squared? (case {{n}})"
    state = agent.agent().invoke({{"messages": [{{"role": "user", "content": question}}]}})
    assert "76527504" in state["messages"][-1].content
'''


def farm_bench(a: list[str], b: list[str], runs: int, timeout: int, env: dict[str, str], cwd: Path) -> None:
    import shlex

    exe = shutil.which("farm-bench")
    if exe is None:
        sys.exit("farm-bench is not on PATH: it times the pairs (see STYLE/bench notes)")
    cmd = [exe, "-n", str(runs), "--timeout", str(timeout), "--vs", shlex.join(b), "--", *a]
    print("$ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    subprocess.run(cmd, cwd=cwd, env=env, check=False)


def base_env(root: Path, bytecode: bool) -> dict[str, str]:
    env = dict(os.environ)
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
    return env


def overhead(root: Path, runs: int, bytecode: bool = False) -> None:
    suite = root / "suite"
    suite.mkdir()
    (suite / "pytest.ini").write_text("[pytest]\n")
    for m in range(10):
        (suite / f"test_m{m}.py").write_text("".join(f"def test_{i}():\n    assert {i} * {i} >= 0\n\n" for i in range(100)))
    env = {**base_env(root, bytecode), "LLMTRACE_HOME": str(root / "home-overhead")}
    print("\n== 1,000 tests without LLM calls: A = pytest --llmtrace, B = pytest (target: A/B <= 1.05)", flush=True)
    farm_bench([*PYTEST, "--llmtrace"], PYTEST, runs, 1200, env, suite)


def offline(root: Path, runs: int, tests: int, bytecode: bool = False) -> None:
    from llmtrace.mock import MockServer, Script

    project = root / "project"  # B replays its answers
    shutil.copytree(PROJECT, project)
    for old in (project / "tests").glob("test_*.py"):
        old.unlink()
    (project / "tests" / "test_agents.py").write_text(AGENT_TEST.format(n=tests))
    live = root / "project-live"  # A records into a copy of its own: B's answers stay those it was checked with
    shutil.copytree(project, live)
    script = Script.from_dict({**json.loads((PROJECT / "agent.mock.json").read_text()), "latency_ms": 200})
    server = MockServer(script).start()
    try:
        env = {**base_env(root, bytecode), "LLMTRACE_HOME": str(root / "home-offline"), "OPENAI_BASE_URL": server.base_url,
               "OPENAI_API_KEY": "sk-bench-not-a-real-key-000000"}
        record = subprocess.run([*PYTEST, "--llmtrace-record", "all"], cwd=project, env=env, capture_output=True, text=True)
        if record.returncode != 0:
            sys.exit(f"recording failed:\n{record.stdout[-3000:]}{record.stderr[-2000:]}")
        sent = server.stats.requests
        offline_env = {k: v for k, v in env.items() if k != "OPENAI_API_KEY"}
        check = subprocess.run([*PYTEST, "--llmtrace-record", "none"], cwd=project, env=offline_env, capture_output=True,
                               text=True)
        if check.returncode != 0 or server.stats.requests != sent:
            sys.exit(f"the offline run failed or sent requests:\n{check.stdout[-3000:]}")
        print(f"\n== {tests} agent tests, {sent} LLM calls, 200 ms each at the server: A = live "
              "(--llmtrace-record all), B = offline (--llmtrace-record none, no key) (target: A/B >= 10)", flush=True)
        # B has no key: farm-bench's environment is one for both, and a live run with no key could not record.
        # The placeholder the plugin gives a replay is what B's client gets; A's env is set by a wrapper.
        a = ["env", f"OPENAI_API_KEY={env['OPENAI_API_KEY']}", *PYTEST, "--llmtrace-record", "all", str(live / "tests")]
        farm_bench(a, [*PYTEST, "--llmtrace-record", "none"], runs, 3600, offline_env, project)
        print(f"(the server counted {server.stats.requests - sent} requests over the timed runs: all from A's)")
        again = subprocess.run([*PYTEST, "--llmtrace-record", "none"], cwd=project, env=offline_env, capture_output=True,
                               text=True)
        print("B after the timed runs:", again.stdout.strip().splitlines()[-1] if again.stdout.strip() else again.returncode)
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--agent-tests", type=int, default=50)
    parser.add_argument("--only", choices=("overhead", "offline"))
    parser.add_argument("--bytecode", action="store_true", help="compile once and reuse the byte-code, as an installed "
                        "package runs (default: the environment's PYTHONDONTWRITEBYTECODE holds)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-pytest-plugin-"))
    try:
        if args.only in (None, "overhead"):
            overhead(root, args.runs, args.bytecode)
        if args.only in (None, "offline"):
            offline(root, args.runs, args.agent_tests, args.bytecode)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
