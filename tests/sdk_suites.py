"""Faithfulness against the SDKs' own suites: openai-python's and langchain-openai's unit tests, from the
source distributions of the installed versions, under python and under `llmtrace run` (default mode and
--no-cache), must pass and fail test for test alike.

    python tests/sdk_suites.py            # fetch (once, into .sdk-suites/), install their test deps, compare
    python tests/sdk_suites.py --no-install --suite langchain-openai

The sources are fetched with `pip download --no-binary :all: --no-deps NAME==VERSION` and kept in
.sdk-suites/ (git-ignored). Each suite runs in-process under llmtrace (`llmtrace run PYTEST ARGS`, the
pytest console script as the script), one process, no xdist; outcomes are read per test id from JUnit XML.
Tests that need the network or the Prism mock server (openai's tests/api_resources, tests/lib/live) are
not among the paths run, in either. A test whose outcome differs is run again, alone, under both: one
that flips under python too is reported as flaky and not counted. Exits 1 when any test's outcome
under llmtrace differs from python's, printing which.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".sdk-suites"

# What the suites import (their pyproject's dev/test groups, less linters, type checkers and what only
# integration tests use).
REQUIREMENTS = ["pytest-asyncio", "inline-snapshot", "dirty-equals", "time-machine", "respx", "freezegun",
                "pytest-mock", "syrupy", "pytest-socket", "vcrpy", "numpy", "langchain-tests", "pytest-retry", "trio"]

SUITES = {
    "openai": {
        "dist": "openai", "folder": "openai-{v}",
        "paths": ["tests/test_client.py", "tests/test_streaming.py", "tests/lib/chat", "tests/lib/responses",
                  "tests/lib/streaming"],
        "args": [],
    },
    "langchain-openai": {
        "dist": "langchain-openai", "folder": "langchain_openai-{v}",
        "paths": ["tests/unit_tests"],
        "args": ["--disable-socket", "--allow-unix-socket"],  # the package's own `make test`
    },
}
# Same for every run: no xdist workers (one process, traced in-process), no cache folder in the sources,
# the suites' own addopts (xdist, durations) left out.
COMMON = ["-n", "0", "-p", "no:cacheprovider", "-o", "addopts=", "-o", "junit_family=xunit1", "-q", "--tb=no", "-rN"]
RECHECKS = 2  # a test whose outcome differs is run again, alone, this often under each: a flaky test must flip under python too


def fetch(dist: str, folder: str) -> Path:
    """The unpacked source distribution of the installed version of `dist`, fetched once."""
    v = version(dist)
    where = CACHE / folder.format(v=v)
    if where.is_dir():
        return where
    CACHE.mkdir(exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-binary", ":all:", "--no-deps",
                    f"{dist}=={v}", "-d", str(CACHE)], check=True)
    archive = next(p for p in CACHE.glob(f"{folder.format(v=v)}.tar.gz"))
    with tarfile.open(archive) as tar:
        tar.extractall(CACHE, filter="data")
    return where


def outcomes(junit: Path, node_ids: dict[str, str] | None = None) -> dict[str, str]:
    """test id → passed / failed / error / skipped, from a JUnit XML report (and, into `node_ids`, each
    test id's pytest node id, to run it again)."""
    result: dict[str, str] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        tid = f"{case.get('classname')}::{case.get('name')}"
        kinds = [child.tag for child in case]
        outcome = ("failed" if "failure" in kinds else "error" if "error" in kinds
                   else "skipped" if "skipped" in kinds else "passed")
        if node_ids is not None and case.get("file"):
            module = case.get("file", "").removesuffix(".py").replace("/", ".")
            classes = (case.get("classname") or "").removeprefix(module).strip(".")
            node_ids[tid] = "::".join(p for p in (case.get("file"), *classes.split("."), case.get("name")) if p)
        if result.get(tid) in ("failed", "error"):  # a test with a teardown error reports twice
            continue
        result[tid] = outcome
    return result


def run(label: str, cmd: list[str], cwd: Path, env: dict[str, str],
        node_ids: dict[str, str] | None = None) -> tuple[dict[str, str], float]:
    t0 = time.monotonic()
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    took = time.monotonic() - t0
    junit = Path(cmd[cmd.index("--junitxml") + 1])
    if not junit.exists():
        print(f"  {label}: no report (exit {p.returncode})\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
        return {}, took
    return outcomes(junit, node_ids), took


def tally(result: dict[str, str]) -> str:
    n = {k: sum(1 for v in result.values() if v == k) for k in ("passed", "failed", "error", "skipped")}
    return f"{n['passed']} passed, {n['failed'] + n['error']} failed" + (f", {n['skipped']} skipped" if n["skipped"] else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", choices=sorted(SUITES), action="append", help="only this suite (repeatable)")
    parser.add_argument("--no-install", action="store_true", help="do not pip-install the suites' test requirements")
    opts = parser.parse_args()
    if not opts.no_install:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *REQUIREMENTS], check=True)
    pytest_script = shutil.which("pytest", path=str(Path(sys.executable).parent))
    if pytest_script is None:
        print("sdk-suites: no pytest console script beside", sys.executable, file=sys.stderr)
        return 2
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("OPENAI_", "LLMTRACE_", "ANTHROPIC_", "OTEL_", "LANGSMITH_", "LANGCHAIN_"))}
    different = False
    rows = []
    with tempfile.TemporaryDirectory(prefix="llmtrace-sdk-suites-") as tmp:
        for name in opts.suite or list(SUITES):
            suite = SUITES[name]
            src = fetch(suite["dist"], suite["folder"])
            results = {}
            node_ids: dict[str, str] = {}
            prefixes = {"python": [sys.executable, pytest_script],
                        "llmtrace run": [sys.executable, "-m", "llmtrace", "run", "-q", pytest_script],
                        "llmtrace run --no-cache": [sys.executable, "-m", "llmtrace", "run", "-q", "--no-cache",
                                                    pytest_script]}
            runs = 0

            def env_for() -> dict[str, str]:
                nonlocal runs
                runs += 1
                return {**clean, "LLMTRACE_HOME": str(Path(tmp) / f"{name}-{runs}" / "home")}

            def junit_for() -> str:
                return str(Path(tmp) / f"{name}-{runs}.xml")

            for label, prefix in prefixes.items():
                env = env_for()
                cmd = [*prefix, *suite["paths"], *suite["args"], *COMMON, "--junitxml", junit_for()]
                result, took = run(label, cmd, src, env, node_ids)
                results[label] = result
                print(f"{name} / {label}: {tally(result)} ({took:.0f} s)", flush=True)
            reference = results["python"]
            row = [name, tally(reference)]
            for label in ("llmtrace run", "llmtrace run --no-cache"):
                got = results[label]
                diff = sorted(t for t in set(reference) | set(got) if reference.get(t) != got.get(t))
                # Run each differing test again under both: one that also flips under python is flaky,
                # not llmtrace's doing; one whose outcome under llmtrace stays apart from python's is.
                flaky = []
                for _ in range(RECHECKS if diff and len(diff) <= 40 and all(t in node_ids for t in diff) else 0):
                    if not diff:
                        break
                    ids = [node_ids[t] for t in diff]
                    again = {}
                    for which in ("python", label):
                        env = env_for()
                        cmd = [*prefixes[which], *ids, *suite["args"], *COMMON, "--junitxml", junit_for()]
                        again[which] = run(which, cmd, src, env)[0]
                    flaky += [t for t in diff if again["python"].get(t) != reference.get(t)]
                    diff = [t for t in diff if t not in flaky and again[label].get(t) != again["python"].get(t)]
                row.append(tally(got))
                if flaky:
                    print(f"  {label}: flaky under python too, not counted: {', '.join(sorted(set(flaky)))}")
                if diff or not reference:
                    different = True
                    print(f"  {label} differs from python in {len(diff)} tests:")
                    for t in diff[:50]:
                        print(f"    {t}: python {reference.get(t)}, {label} {got.get(t)}")
            rows.append(row)
    print("\n| suite | python | `llmtrace run` | `llmtrace run --no-cache` |\n|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main())
