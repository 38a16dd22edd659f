"""`llmtrace run` without typer: the plain parser reads its common forms exactly as the typer app does,
and leaves everything else (help, mistakes, rarer options) to it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmtrace.cli import fast_run
from llmtrace.cli.main import app
from llmtrace.cli import launch
from conftest import run_cli

def _normal(kwargs: dict) -> dict:
    """What a run would use: the options given, then the environment's and pyproject.toml's, then the defaults."""
    from llmtrace.cli.settings import resolve

    given = {k: v for k, v in kwargs.items() if k not in ("script_arg", "args", "module")}
    return {"script_arg": kwargs["script_arg"], "args": list(kwargs["args"] or []),
            "module": kwargs.get("module", False), "given": given, **resolve(given)}


def _typer_reads(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> dict:
    seen: dict = {}
    monkeypatch.setattr(launch, "start_run", lambda script_arg, args, **kw: seen.update(script_arg=script_arg, args=args, **kw))
    app(["run", *argv], standalone_mode=False)
    return seen


PLAIN = [
    ["a.py"],
    ["-q", "a.py"],
    ["--quiet", "--no-cache", "a.py", "x", "--y", "-q", "--", "z"],
    ["--mock", "--mock-script", "m.json", "a.py"],
    ["--mock-script=m.yaml", "a.py", "--mock"],
    ["--tag", "a=1", "--tag=b=2", "--tag", "c=", "a.py"],
    ["--name", "n1", "--name", "n2", "a.py"],
    ["--name", "-x", "a.py"],
    ["--trace-id", "018f0000-0000-7000-8000-000000000000", "a.py"],
    ["--cache-dir", "/tmp/c", "--cache-ttl", "30m", "--cache-mode", "reuse", "--cache-size", "7", "a.py"],
    ["--retries", "0", "--retries=20", "a.py"],
    ["--no-children", "--split", "--semantic-cache", "--project", "p", "a.py"],
    ["--cache-mode", "bogus", "a.py"],  # valid to both parsers: start_run says it is bad
    ["--otlp", "http://h", "--otlp-header", "a=b", "a.py"],
    ["--max-calls", "3", "--max-cost=0.5", "--max-tokens", "10", "--semantic-threshold", "0.9", "a.py"],
    ["--embedding-model", "e", "--semantic-threshold=1", "a.py"],
    ["-m", "pkg.mod", "a", "-q", "-m", "x"],
    ["-q", "-m", "pytest", "-q", "tests"],
    ["-m", "-q", "pytest"],
    ["a.py", "--help"],  # the script's own --help
    ["-"],
]
TYPER = [
    [], ["--help"], ["-h"], ["--bogus", "a.py"], ["--", "a.py"], ["--retries", "21", "a.py"], ["--retries", "-1", "a.py"],
    ["--retries", "x", "a.py"], ["--cache-size", "0", "a.py"], ["--name"], ["-qx", "a.py"], ["--quiet=1", "a.py"],
    ["--max-calls", "-3", "a.py"], ["--semantic-threshold", "1.5", "a.py"], ["--max-cost", "1e3", "a.py"], ["-m"],
    ["-mpytest"], ["--split=1", "a.py"],
]


@pytest.mark.parametrize("argv", PLAIN, ids=" ".join)
def test_the_plain_parser_reads_what_typer_reads(argv, monkeypatch):
    plain = fast_run.plain_run_args(argv)
    assert plain is not None
    assert _normal(plain) == _normal(_typer_reads(argv, monkeypatch))


@pytest.mark.parametrize("argv", TYPER, ids=" ".join)
def test_everything_else_goes_to_typer(argv):
    assert fast_run.plain_run_args(argv) is None


@pytest.mark.parametrize("argv", PLAIN, ids=" ".join)
def test_both_parsers_resolve_the_environment_and_pyproject_alike(argv, monkeypatch, tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.llmtrace]\ntags = {team = "search"}\nretries = 2\nno-cache = true\n'
                                             'cache-ttl = 60\nmax-calls = 9\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLMTRACE_SPLIT", "1")
    monkeypatch.setenv("LLMTRACE_TAGS", "env=ci,team=env-team")
    monkeypatch.setenv("LLMTRACE_RETRIES", "3")
    plain = fast_run.plain_run_args(argv)
    assert plain is not None
    assert _normal(plain) == _normal(_typer_reads(argv, monkeypatch))


def test_a_plain_run_loads_neither_typer_nor_click_and_errors_still_read_as_before(tmp_path: Path):
    script = tmp_path / "who.py"
    script.write_text("import sys\nprint(sorted(m for m in ('typer', 'click', 'rich') if m in sys.modules))\n")
    r = run_cli("run", "-q", "--no-cache", str(script))
    assert r.code == 0 and r.stdout.strip() == "[]", r
    r = run_cli("run", "--bogus", str(script))
    assert r.code == 2 and r.stderr.startswith("llmtrace: error: No such option") and "--bogus" in r.stderr  # typer's wording
    assert r.stderr.strip().endswith("llmtrace run --help')")
    r = run_cli("run", "-q", str(tmp_path / "missing.py"))
    assert r.code == 3 and r.stderr.strip() == f"llmtrace: error: no such script: {tmp_path / 'missing.py'}"
    r = run_cli("run", "-q", "--cache-ttl", "soon", str(script))
    assert r.code == 2 and r.stderr.startswith("llmtrace: error: bad"), r.stderr


def test_the_summary_without_rich_reads_as_rich_prints_it_off_a_terminal():
    import io

    from rich.console import Console

    from llmtrace.model import Totals, Trace
    from llmtrace.render.summary import plain_summary, run_summary
    from llmtrace.store.queries import RunParts

    def trace(**kw) -> Trace:
        t = Trace(id="a6586a54-b863-465f-93a3-57d86fec4d55", name="agent.py", start_us=0, end_us=2_580_000, **kw)
        t.totals = Totals(llm_calls=4, tool_calls=3, input_tokens=964, output_tokens=82, cost=0.000194)
        return t

    hits = trace(status="ok")
    hits.totals.cache_hits, hits.totals.cost_saved, hits.totals.retries = 1234, 0.5, 2
    replay = trace(status="ok", tags={"replay_of": "x"})
    replay.totals.cache_hits = 1
    cases = [
        (trace(status="ok"), None),
        (trace(status="error", exit_code=3), None),
        (trace(status="over-budget", exit_code=1, error="budget $0.01 reached after 3 calls"), None),
        (hits, None),
        (replay, None),
        (trace(status="error", run_id="r"), RunParts(traces=5, errors=2, totals=Totals(llm_calls=9, unpriced_calls=1))),
    ]
    for t, parts in cases:
        out = io.StringIO()
        Console(file=out, highlight=False, soft_wrap=True, width=40).print(run_summary(t, parts))
        assert plain_summary(t, parts) == out.getvalue()


def test_a_run_prints_its_summary_without_loading_rich(llmtrace_home, tmp_path: Path):
    script = tmp_path / "one.py"
    script.write_text("print('hi')\n")
    p = subprocess.run([sys.executable, "-X", "importtime", "-m", "llmtrace", "run", "--no-cache", str(script)],
                       capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert p.returncode == 0 and p.stdout == "hi\n"
    summary = [line for line in p.stderr.splitlines() if not line.startswith("import time:")]
    assert summary[0].startswith("llmtrace: trace ") and " ok in " in summary[0], p.stderr
    assert summary[-1].startswith("  see it: llmtrace show ")
    loaded = {line.split("|")[-1].strip() for line in p.stderr.splitlines() if line.startswith("import time:")}
    assert "rich" not in loaded and "rich.console" not in loaded
