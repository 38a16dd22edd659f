"""Where an offline `pytest --llmtrace-record none` run's work goes, in instructions (issue #35).

    python bench/bench_pytest_offline_instructions.py                 # ~6 minutes
    python bench/bench_pytest_offline_instructions.py --no-bytecode   # llmtrace compiled from source each run

bench_pytest_plugin.py times the offline suite (50 create_agent tests, 4 model calls each) against the
live one; on a 2-core machine shared with other work its wall figures move by ±15–25 %. This counts the
instructions of the same suite's processes under valgrind's cachegrind (every thread, and any process
they start; PYTHONHASHSEED fixed), four ways:

- plain: `pytest` without llmtrace, against the scripted server answering at 0 ms (the server's own
  work is outside the count: it is in another process);
- offline: `pytest --llmtrace-record none`, no key, every call replayed from the recorded answers;

each in full and with `--collect-only` (interpreter, pytest, the suite's imports, llmtrace's session
start and end: start-up). Full less start-up, over the tests, is the work of one test. By default the
processes run as an installed package would, byte-code compiled once and reused (as bench_peers.py
runs them); `--no-bytecode` keeps PYTHONDONTWRITEBYTECODE as the environment has it: then pytest rewrites
the assertions of every module of the installed pytest plugins' packages (langsmith, hypothesis, anyio …)
at every start, unable to keep the result, and an editable llmtrace checkout is compiled from source.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_pytest_plugin import AGENT_TEST, PROJECT, PYTEST

_IREFS = re.compile(r"==(\d+)== I\s+refs:\s+([\d,]+)")


def count(cmd: list[str], env: dict[str, str], cwd: Path) -> int:
    """Instructions of `cmd` and of the processes it starts."""
    vg = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null", "--trace-children=yes"]
    p = subprocess.run([*vg, *cmd], env=env, cwd=cwd, capture_output=True, text=True, timeout=3600, check=False)
    found = _IREFS.findall(p.stderr)
    if p.returncode != 0 or not found:
        sys.exit(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
    return sum(int(n.replace(",", "")) for _, n in found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agent-tests", type=int, default=50)
    parser.add_argument("--no-bytecode", action="store_true", help="compile from source at every start (no .pyc written)")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind): it counts the instructions")
    from llmtrace.mock import MockServer, Script

    root = Path(tempfile.mkdtemp(prefix="bench-pytest-instr-"))
    try:
        project = root / "project"
        shutil.copytree(PROJECT, project)
        for old in (project / "tests").glob("test_*.py"):
            old.unlink()
        (project / "tests" / "test_agents.py").write_text(AGENT_TEST.format(n=args.agent_tests))
        script = Script.from_dict(json.loads((PROJECT / "agent.mock.json").read_text()))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGCHAIN_", "LANGSMITH_"))}
        env.update({"LLMTRACE_HOME": str(root / "home"), "PYTHONHASHSEED": "0",
                    "LLMTRACE_PRICE_UNITS": str(root / "price-units.json")})
        if not args.no_bytecode:  # compiled files in a folder of their own, written by the recording run
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
        with MockServer(script) as server:
            live = {**env, "OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "sk-bench-not-a-real-key-000000"}
            offline = {k: v for k, v in live.items() if k != "OPENAI_API_KEY"}
            record = subprocess.run([*PYTEST, "--llmtrace-record", "all"], cwd=project, env=live, capture_output=True,
                                    text=True)
            if record.returncode != 0:
                sys.exit(f"recording failed:\n{record.stdout[-3000:]}{record.stderr[-2000:]}")
            sent = server.stats.requests
            rows = {}
            for name, cmd, e in (("plain", PYTEST, live), ("offline", [*PYTEST, "--llmtrace-record", "none"], offline)):
                print(f"counting {name} …", file=sys.stderr, flush=True)
                rows[name] = (count([*cmd, "--collect-only"], e, project), count(cmd, e, project))
            if server.stats.requests - sent != args.agent_tests * 4:  # plain's full run's, and no other
                sys.exit(f"the server counted {server.stats.requests - sent} requests, not plain's {args.agent_tests * 4}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    n = args.agent_tests
    (ps, pf), (os_, of) = rows["plain"], rows["offline"]
    print(f"{n} create_agent tests, 4 calls each; {'no byte-code cache' if args.no_bytecode else 'byte-code cached'}; "
          "instructions (M)")
    print(f"{'':>22} {'plain (0 ms server)':>20} {'offline (replay)':>17} {'offline - plain':>16}")
    for label, a, b in (("whole run", pf, of), ("start-up", ps, os_), ("per test", (pf - ps) / n, (of - os_) / n)):
        print(f"{label:>22} {a / 1e6:>20,.1f} {b / 1e6:>17,.1f} {(b - a) / 1e6:>+16,.1f}")
    print(f"offline / plain, whole run: {of / pf:.3f}")


if __name__ == "__main__":
    main()
