"""What a user coming from `python`, `coverage run` and LangSmith expects: `run -m`, console scripts on
PATH, settings from the environment and pyproject.toml, help pages without type placeholders, `show`
within 80 columns, and the smaller habits (`m` is minutes, `--name` without `.py`, unfolding steps)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from rich.cells import cell_len

from conftest import ROOT, SAMPLES, run_cli

MOD = '''import os, sys
print("argv", sys.argv)
print("path0", sys.path[0] == os.getcwd(), __name__, __spec__.name if __spec__ else None)
print("args", sys.argv[1:])
if "boom" in sys.argv:
    raise ValueError("boom")
sys.exit(int(sys.argv[-1]) if sys.argv[-1].isdigit() else 0)
'''


def _pkg(tmp_path: Path) -> Path:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "mod.py").write_text(MOD)
    (tmp_path / "pkg" / "__main__.py").write_text("import sys\nprint('main of pkg', sys.argv[1:])\n")
    return tmp_path


def _python(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=str(cwd),
                          env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"})


def _typer_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The typer command (not the fast path) through the real entry of the typer app."""
    code = "import sys; from llmtrace.cli.main import main; sys.argv[0] = 'llmtrace'; main()"
    return _python("-c", code, *args, cwd=cwd)


def test_run_m_behaves_as_python_m(tmp_path):
    cwd = _pkg(tmp_path)
    for args in (["a", "b"], ["a", "b", "3"], ["x", "boom"]):
        want = _python("-m", "pkg.mod", *args, cwd=cwd)
        fast = run_cli("run", "-q", "--no-cache", "-m", "pkg.mod", *args, cwd=cwd)
        slow = _typer_cli("run", "-q", "--no-cache", "-m", "pkg.mod", *args, cwd=cwd)
        for got in (fast, slow):
            code = getattr(got, "code", getattr(got, "returncode", None))
            assert (code, got.stdout) == (want.returncode, want.stdout), (args, got.stderr)
            assert got.stderr == want.stderr  # the same traceback, runpy's frames and all
    assert "argv ['" + str(cwd / "pkg" / "mod.py") + "', 'x', 'boom']" in want.stdout  # python's argv[0]: the file
    r = run_cli("run", "-q", "--no-cache", "-m", "pkg", "z", cwd=cwd)  # a package runs its __main__
    assert r.code == 0 and r.stdout == "main of pkg ['z']\n"
    for name, message in (("nope", "no module named nope"), ("pkg.nope", "no module named pkg.nope")):
        r = run_cli("run", "-m", name, cwd=cwd)
        assert r.code == 3 and r.stderr == f"llmtrace: error: {message}\n"
    r = run_cli("ls", "--json")
    names = [t["name"] for t in json.loads(r.stdout)]
    assert "pkg.mod" in names and "pkg" in names


def test_a_console_script_on_path_runs_as_the_shell_would_run_it(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "hello-tool"
    tool.write_text(f"#!{sys.executable}\nimport sys\nprint('hello', sys.argv)\nsys.exit(4)\n")
    tool.chmod(0o755)
    shell = bin_dir / "shell-tool"
    shell.write_text("#!/bin/sh\necho hi\n")
    shell.chmod(0o755)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    direct = subprocess.run(["hello-tool", "x"], capture_output=True, text=True, env={**os.environ, **env})
    r = run_cli("run", "-q", "--no-cache", "hello-tool", "x", env=env)
    assert (r.code, r.stdout) == (direct.returncode, direct.stdout) == (4, f"hello ['{tool}', 'x']\n"), r.stderr
    r = run_cli("run", "shell-tool", env=env)
    assert r.code == 3 and r.stderr.count("\n") == 1 and "shell-tool" in r.stderr and "not a Python script" in r.stderr
    r = run_cli("run", "no-such-tool-anywhere", env=env)
    assert r.code == 3 and r.stderr == "llmtrace: error: no such script: no-such-tool-anywhere\n"


def test_pytest_runs_under_run_m(tmp_path):
    tests = tmp_path / "some_tests"
    tests.mkdir()
    (tests / "test_one.py").write_text("def test_ok():\n    assert 1 + 1 == 2\n")
    r = run_cli("run", "-q", "--no-cache", "-m", "pytest", "-q", "-p", "no:cacheprovider", "some_tests", cwd=tmp_path)
    assert r.code == 0 and "1 passed" in r.stdout, r.stdout + r.stderr
    (tests / "test_two.py").write_text("def test_bad():\n    assert False\n")
    r = run_cli("run", "-q", "--no-cache", "-m", "pytest", "-q", "-p", "no:cacheprovider", "some_tests", cwd=tmp_path)
    assert r.code == 1 and "1 failed" in r.stdout  # pytest's own exit status


def _last(cwd: Path) -> dict:
    r = run_cli("ls", "--json", "-n", "1", cwd=cwd)
    return json.loads(r.stdout)[0]


def test_flag_beats_environment_beats_pyproject(tmp_path):
    project = tmp_path / "proj"
    (project / "sub").mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.llmtrace]\ntags = {team = "search", level = "file"}\nname = "from-file"\n'
        'no-cache = true\nretries = 2\nquiet = true\n')
    script = project / "sub" / "s.py"
    script.write_text("print('ok')\n")
    r = run_cli("run", "s.py", cwd=project / "sub")  # pyproject.toml found above the working directory
    assert r.code == 0 and r.stderr == ""  # quiet from the file
    t = _last(project)
    assert t["name"] == "from-file" and t["tags"] == {"team": "search", "level": "file"}
    env = {"LLMTRACE_NAME": "from-env", "LLMTRACE_TAGS": "level=env,extra=1", "LLMTRACE_QUIET": "0"}
    r = run_cli("run", "s.py", cwd=project / "sub", env=env)
    assert r.code == 0 and "llmtrace: trace" in r.stderr  # the environment's quiet=0 wins over the file
    t = _last(project)
    assert t["name"] == "from-env" and t["tags"] == {"team": "search", "level": "env", "extra": "1"}
    r = run_cli("run", "-q", "--name", "from-cli", "--tag", "level=cli", "s.py", cwd=project / "sub", env=env)
    t = _last(project)
    assert t["name"] == "from-cli" and t["tags"] == {"team": "search", "level": "cli", "extra": "1"}
    # a bad value: one line naming where it came from, a non-zero exit, nothing run
    for bad_env, where in (({"LLMTRACE_RETRIES": "lots"}, "LLMTRACE_RETRIES"), ({"LLMTRACE_SPLIT": "maybe"}, "LLMTRACE_SPLIT"),
                           ({"LLMTRACE_CACHE_MODE": "never"}, "LLMTRACE_CACHE_MODE")):
        r = run_cli("run", "s.py", cwd=project / "sub", env=bad_env)
        assert r.code == 2 and r.stdout == "" and r.stderr.count("\n") == 1 and where in r.stderr, r.stderr
    (project / "pyproject.toml").write_text('[tool.llmtrace]\nretries = "two"\n')
    r = run_cli("run", "s.py", cwd=project / "sub")
    assert r.code == 2 and r.stderr.count("\n") == 1 and "retries" in r.stderr and str(project / "pyproject.toml") in r.stderr
    (project / "pyproject.toml").write_text('[tool.llmtrace]\nno_such_setting = 1\n')
    r = run_cli("run", "s.py", cwd=project / "sub")
    assert r.code == 2 and r.stderr.count("\n") == 1 and "no_such_setting" in r.stderr


def test_project_from_llmtrace_or_langsmith_tags_the_trace(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("pass\n")
    assert run_cli("run", "-q", str(script), env={"LLMTRACE_PROJECT": "p1", "LANGSMITH_PROJECT": "ls"}).code == 0
    assert run_cli("run", "-q", str(script), env={"LANGSMITH_PROJECT": "p2"}).code == 0
    assert run_cli("run", "-q", str(script), env={"LANGCHAIN_PROJECT": "p3"}).code == 0
    assert run_cli("run", "-q", "--project", "p4", str(script), env={"LLMTRACE_PROJECT": "p1"}).code == 0
    for project, count in (("p1", 1), ("p2", 1), ("p3", 1), ("p4", 1), ("ls", 0)):
        r = run_cli("ls", "--json", "--tag", f"project={project}")
        assert len(json.loads(r.stdout)) == count, project


def _commands() -> list[list[str]]:
    import typer

    from llmtrace.cli.main import app

    out: list[list[str]] = [[]]

    def walk(command, path):
        for name, sub in getattr(command, "commands", {}).items():
            out.append([*path, name])
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return out


def test_no_help_page_shows_a_type_placeholder():
    commands = _commands()
    assert ["run"] in commands and ["cache", "clear"] in commands and len(commands) >= 18
    placeholder = re.compile(r"<[^<>\s]*>|\{[^{}\s]*\}")
    for path in commands:
        r = run_cli(*path, "--help")
        assert r.code == 0, path
        for line in r.stdout.splitlines():
            assert not placeholder.search(line), (path, line)
    ls_help = run_cli("ls", "--help").stdout
    assert "--status STATUS" in ls_help and "over-budget" in ls_help
    run_help = run_cli("run", "--help").stdout
    for metavar in ("--tag KEY=VALUE", "--cache-ttl DURATION", "--retries N", "--max-cost USD", "--mock-script FILE"):
        assert metavar in run_help
    assert "run [OPTIONS] SCRIPT [ARGS...]" in run_help
    assert "show [OPTIONS] [TRACE]" in run_cli("show", "--help").stdout


def _cli80(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llmtrace", *args], capture_output=True, text=True, cwd=str(ROOT),
                          env={**os.environ, "COLUMNS": "80", "PYTHONUNBUFFERED": "1"})


def test_show_of_the_seed_agent_fits_80_columns_and_ls_finds_it_without_py(llmtrace_home):
    r = _cli80("run", "--mock", str(SAMPLES / "math_agent.py"))
    assert r.returncode == 0, r.stderr
    for extra in ([], ["--full"], ["--timeline"]):
        r = _cli80("show", "last", "--no-pager", *extra)
        lines = r.stdout.splitlines()
        assert r.returncode == 0 and len(lines) > 5
        assert max(cell_len(line) for line in lines) <= 80, (extra, [line for line in lines if cell_len(line) > 80])
        assert "$0.000194" in r.stdout  # the totals break onto a second line, never cropped away
        if extra != ["--full"]:
            assert "…" in r.stdout  # what does not fit is cropped
        else:  # the handle `show --span` takes stays on every span's line
            assert all(re.search(r"  span [0-9a-f]{8}$", line) for line in lines if "LLM gpt-4o-mini" in line)
    found = json.loads(run_cli("ls", "--json", "--name", "math_agent").stdout)
    assert [t["name"] for t in found] == ["math_agent.py"]
    assert json.loads(run_cli("ls", "--json", "--name", "math_agent.py").stdout)[0]["id"] == found[0]["id"]


def test_a_long_run_offers_its_steps_apart_from_its_plumbing(tmp_path):
    script = tmp_path / "many.py"
    script.write_text("from langchain_core.runnables import RunnableLambda\n"
                      "step = RunnableLambda(lambda x: x + 1, name='step')\n"
                      "for i in range(25):\n    step.invoke(i)\n")
    assert run_cli("run", "-q", "--no-cache", str(script)).code == 0
    folded = run_cli("show", "last", "--steps", "3").stdout
    assert "19 more steps (show them: --all-steps, or --steps N)" in folded
    every = run_cli("show", "last", "--all-steps").stdout
    assert every.count("chain step") == 25 and "more steps" not in every
