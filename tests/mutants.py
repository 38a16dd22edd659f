"""The mutation check: break one line of llmtrace at a time and make sure a test notices.

    python tests/mutants.py                 # every mutant against its tests; a table at the end
    python tests/mutants.py -k replay       # only the mutants whose name contains "replay"
    python tests/mutants.py --suite         # each mutant against the whole default suite (slow)
    python tests/mutants.py --list          # the mutants, and where each line is found today

Each mutant is applied to a fresh copy of the repository in a temporary folder (never to this tree),
and pytest runs with -x in that copy with PYTHONPATH pointing at it, so the tests and every process
they start import the mutated package. A mutant is *killed* when a test fails, *survived* when all
pass. Before the mutants, the same tests run once on an unmutated copy: a test that fails there would
make every kill meaningless. The exit status is 1 if any mutant survived or any line was not found.

A mutation names the line it breaks by its code (whitespace around it ignored), not by its number,
and the files to look in by a glob, so it survives small refactors and files that move.
The line must occur exactly once across those files; if it is gone or doubled, this script says so
and stops. Edit MUTANTS below to add one: give the line as it stands and what it becomes.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Left out of each copy: environments, caches and the interop servers' installs.
_SKIP = shutil.ignore_patterns(".git", ".venv", ".ci-*", ".interop", "__pycache__", ".pytest_cache", "*.egg-info",
                               ".hypothesis", "build", "dist", "node_modules")


@dataclass
class Mutant:
    name: str  # the behaviour it breaks
    files: str  # glob (relative to the repository) of the files the line may be in
    line: str  # the line as it stands (stripped): must occur exactly once in those files
    into: str  # what it becomes (same indentation)
    tests: list[str] = field(default_factory=list)  # pytest node ids that should notice


MUTANTS = [
    Mutant("identical requests in a run all take the first recorded answer",
           "llmtrace/capture/*.py",
           'n = 0 if settings.cache_mode == "reuse" else settings.occurrences.next(int(base[:16], 16))', "n = 0",
           ["tests/test_catch.py::test_identical_requests_on_a_rerun_get_their_answers_in_order"]),
    Mutant("replay gives a recorded answer again (no 'already used' check)",
           "llmtrace/capture/*.py",
           "i = next((i for i, k in enumerate(self.keys) if not self.used[i] and k == key), None)",
           "i = next((i for i, k in enumerate(self.keys) if k == key), None)",
           ["tests/test_catch.py::test_replay_of_repeated_requests_gives_each_its_own_answer"]),
    Mutant("span error messages stored unredacted",
           "llmtrace/store/*.py", "values[_ERROR_INDEX] = self.redactor.text(values[_ERROR_INDEX])", "pass",
           ["tests/test_catch.py::test_error_messages_are_redacted_in_the_store_exports_and_otlp"]),
    Mutant("the wait a server asked for scaled like a backoff",
           "llmtrace/capture/*.py", "if asked is None or asked != seconds:", "if True:",
           ["tests/test_catch.py::test_retry_after_in_seconds_is_honoured"]),
    Mutant("import of a non-JSON file imports nothing and succeeds",
           "llmtrace/cli/*.py", 'raise UserError(f"{file} is not JSON or JSON lines: {e}") from None', "return []",
           ["tests/test_import_validation.py::test_non_json_is_one_line_and_exit_2"]),
    Mutant("import of a document with missing fields goes on (and crashes)",
           "llmtrace/export/*.py", 'raise _Bad(f"{where} has no {name!r}")', "pass",
           ["tests/test_import_validation.py::test_a_damaged_document_is_refused_whole"]),
    Mutant("import of an empty file succeeds",
           "llmtrace/cli/*.py", 'raise UserError(f"{file} is empty: no trace to import")', "return []",
           ["tests/test_import_validation.py::test_an_empty_file_is_an_error"]),
    Mutant("import writes spans that belong to another stored trace",
           "llmtrace/export/*.py", "if trace_id != owner[span_id]:", "if False:",
           ["tests/test_import_validation.py::test_a_span_id_of_another_trace_in_the_store_is_refused"]),
    Mutant("import accepts a parent cycle",
           "llmtrace/export/*.py", 'raise _Bad(f"span {_show(at)} is its own ancestor (a parent cycle)")', "break",
           ["tests/test_import_validation.py::test_a_damaged_document_is_refused_whole"]),
    Mutant("a new store is set up without the lock (concurrent first openers)",
           "llmtrace/store/*.py", "with _setup_lock(path):", "with contextlib.nullcontext():",
           ["tests/test_store_race.py"]),
    Mutant("--max-calls lets one call too many through",
           "llmtrace/capture/*.py", "if lim.max_calls is not None and self.calls >= lim.max_calls:",
           "if lim.max_calls is not None and self.calls > lim.max_calls:",
           ["tests/test_replay_budget.py::test_max_calls_stops_a_loop_where_the_script_can_catch_it"]),
    Mutant("cached tokens priced as ordinary input",
           "llmtrace/*.py", "cached = min(cached or 0, input_tokens)", "cached = 0",
           ["tests/test_units.py::test_pricing_cached_tokens_and_unknown_models"]),
    Mutant("semantic cache answers whatever is closest, however far",
           "llmtrace/capture/*.py", "if best is not None and best[0] >= settings.semantic.threshold:",
           "if best is not None:",
           ["tests/test_cache_retries.py::test_semantic_cache"]),
    # (Dropping `^x-api-key$` alone changes nothing: `api[_-]?key` matches X-Api-Key too.)
    Mutant("an Authorization header is not taken for a credential",
           "llmtrace/*.py", 'r"(api[_-]?key|apikey|secret|password|passwd|authorization|credential|private[_-]?key"',
           'r"(api[_-]?key|apikey|secret|password|passwd|credential|private[_-]?key"',
           ["tests/test_units.py::test_secret_key_names"]),
    Mutant("a Bearer token in text is kept",
           "llmtrace/*.py", '("Bearer ", r"(?<=Bearer )[A-Za-z0-9_\\-\\.=]{16,}"),', '("Bearer ", r"(?!)"),',
           ["tests/test_units.py::test_redactor_values_and_shapes"]),
    Mutant("cache entries never expire (--cache-ttl ignored)",
           "llmtrace/store/*.py", 'if ttl is not None and clock.now() - entry.get("stored_s", 0) > ttl:',
           "if False:",
           ["tests/test_cache_retries.py::test_ttl_expires_entries"]),
]


def find(root: Path, mutant: Mutant) -> tuple[Path, int]:
    """The one file and line index holding `mutant.line`; SystemExit naming the problem otherwise."""
    hits = []
    for path in sorted(root.glob(mutant.files)):
        if path.is_file():
            for i, text in enumerate(path.read_text(encoding="utf-8").splitlines()):
                if text.strip() == mutant.line:
                    hits.append((path, i))
    if len(hits) != 1:
        where = ", ".join(f"{p.relative_to(root)}:{i + 1}" for p, i in hits) or "nowhere"
        raise SystemExit(f"mutant {mutant.name!r}: the line {mutant.line!r} must occur once in {mutant.files}, "
                         f"found {len(hits)} ({where}); update MUTANTS in {Path(__file__).relative_to(ROOT)}")
    return hits[0]


def apply(root: Path, mutant: Mutant) -> str:
    path, i = find(root, mutant)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    old = lines[i]
    indent = old[: len(old) - len(old.lstrip())]
    lines[i] = indent + mutant.into + ("\n" if old.endswith("\n") else "")
    path.write_text("".join(lines), encoding="utf-8")
    return f"{path.relative_to(root)}:{i + 1}"


def copy_repo(into: Path) -> Path:
    dest = into / "repo"
    shutil.copytree(ROOT, dest, ignore=_SKIP, symlinks=True)
    return dest


def run_tests(copy: Path, tests: list[str], *, suite: bool) -> tuple[bool, str, float]:
    """(all passed, the first failing test or "", seconds) for pytest -x in `copy`."""
    env = {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}
    check = subprocess.run([sys.executable, "-c", "import llmtrace; print(llmtrace.__file__)"], cwd=copy, env=env,
                           capture_output=True, text=True)
    if not check.stdout.strip().startswith(str(copy)):
        raise SystemExit(f"the copy's llmtrace is not the one imported ({check.stdout.strip() or check.stderr.strip()})")
    args = [] if suite else ["-n", "0", *tests]
    start = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-rf", "-p", "no:cacheprovider", *args], cwd=copy,
                       env=env, capture_output=True, text=True)
    seconds = time.monotonic() - start
    failed = re.findall(r"^(?:FAILED|ERROR) (.+?)(?: - .*)?$", p.stdout, re.MULTILINE)
    if p.returncode == 0:
        return True, "", seconds
    return False, failed[0] if failed else f"pytest exit {p.returncode}: {p.stdout.strip().splitlines()[-1:]}", seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", default="", help="only mutants whose name contains this")
    parser.add_argument("--suite", action="store_true", help="run the whole default suite against each mutant")
    parser.add_argument("--list", action="store_true", help="list the mutants and where each line is today")
    parser.add_argument("--no-baseline", action="store_true", help="skip the run of the tests on an unmutated copy")
    opts = parser.parse_args(argv)
    chosen = [m for m in MUTANTS if opts.k.lower() in m.name.lower()]
    for m in chosen:  # every line is found before anything runs: a stale list fails at once
        path, i = find(ROOT, m)
        if opts.list:
            print(f"{m.name}\n    {path.relative_to(ROOT)}:{i + 1}: {m.line}\n    -> {m.into}")
    if opts.list or not chosen:
        return 0
    tests = sorted({t for m in chosen for t in m.tests})
    if not opts.no_baseline:
        with tempfile.TemporaryDirectory(prefix="llmtrace-mutants-") as tmp:
            ok, first, seconds = run_tests(copy_repo(Path(tmp)), tests, suite=opts.suite)
        print(f"baseline (no mutation): {'all pass' if ok else 'FAILS at ' + first} ({seconds:.0f} s)", flush=True)
        if not ok:
            return 1
    rows, survived = [], 0
    for m in chosen:
        with tempfile.TemporaryDirectory(prefix="llmtrace-mutant-") as tmp:
            copy = copy_repo(Path(tmp))
            where = apply(copy, m)
            ok, first, seconds = run_tests(copy, m.tests, suite=opts.suite)
        survived += ok
        rows.append((m.name, where, "SURVIVED" if ok else first, seconds))
        print(f"{'SURVIVED' if ok else 'killed  '} {m.name} ({where}) {first} {seconds:.0f} s", flush=True)
    print("\n| mutation | where | killed by | seconds |\n|---|---|---|---|")
    for name, where, by, seconds in rows:
        print(f"| {name} | `{where}` | {'**survived**' if by == 'SURVIVED' else f'`{by}`'} | {seconds:.1f} |")
    print(f"\n{len(rows) - survived} of {len(rows)} mutants killed" + ("" if opts.suite else " (targeted tests; --suite for all)"))
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
