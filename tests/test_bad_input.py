"""A user's mistake gives one line on stderr, a documented exit code and no traceback."""

from __future__ import annotations

import os

import pytest

from conftest import AGENTS, run_cli, skip_unless_ci


@pytest.fixture
def files(tmp_path):
    (tmp_path / "binary.py").write_bytes(b"\x7fELF\x00\x01\x02")
    (tmp_path / "notes.txt").write_text("just some notes, not code at all {")
    (tmp_path / "adir").mkdir()
    return tmp_path


CASES = [
    (["run", "{tmp}/missing.py"], 3, "no such script"),
    (["run", "{tmp}/adir"], 3, "is a directory"),
    (["run", "{tmp}/binary.py"], 3, "not a Python script"),
    (["run", "{tmp}/notes.txt"], 3, "not a Python script"),
    (["run", "--tag", "novalue", str(AGENTS / "behaves_like_python.py")], 2, "bad tag 'novalue'"),
    (["run", "--tag", "=x", str(AGENTS / "behaves_like_python.py")], 2, "bad tag"),
    (["run", "--trace-id", "not-a-uuid", str(AGENTS / "behaves_like_python.py")], 2, "bad --trace-id"),
    (["run"], 2, "Missing argument"),
    (["run", "--bogus", "x.py"], 2, "No such option"),
    (["run", "--mock", "--mock-script", "{tmp}/nope.json", str(AGENTS / "behaves_like_python.py")], 2, "no such mock script"),
    (["nosuchcommand"], 2, "No such command"),
    (["show", "ffffffff"], 2, "no trace matches"),
    (["show", "zz-not-hex"], 2, "bad trace id"),
    (["show", "last"], 2, "no traces recorded yet"),
    (["show", "last~x"], 2, "bad trace reference"),
    (["ls", "--status", "weird"], 2, "bad --status"),
    (["ls", "--limit", "0"], 2, "Invalid value"),
    (["ls", "--limit", "99999999999999999999999"], 2, "Invalid value"),
    (["diff", "nosuch"], 2, "bad trace id"),
    (["replay", "last"], 2, "no traces recorded yet"),
    (["run", "--max-calls", "-1", str(AGENTS / "behaves_like_python.py")], 2, "Invalid value"),
    (["ls", "--tag", "bad"], 2, "bad tag"),
    (["ls", "--since", "tomorrowish"], 2, "bad --since"),
    (["ls", "--since", "1d", "--until", "2d"], 2, "is not after --since"),
    (["ls", "--name", "x'; DROP TABLE traces; --"], 0, None),
    (["cost", "--since", "last tuesday"], 2, "bad --since"),
    (["cost", "--until", "2026-02-30"], 2, "bad --until"),
    (["cost", "--by", "colour"], 2, "bad --by 'colour'"),
    (["cost", "--by", "tag:"], 2, "bad --by"),
    (["feedback", "last", "--score", "11"], 2, "Invalid value for '--score'"),
    (["feedback", "last", "--score", "-11"], 2, "Invalid value for '--score'"),
    (["feedback", "last", "--score", "abc"], 2, "Invalid value for '--score'"),
    (["feedback", "last"], 2, "Missing option '--score'"),
    (["tag", "last", "novalue"], 2, "bad tag"),
    (["tag", "last"], 2, "nothing to do"),
    (["tag", "deadbeef", "a=b"], 2, "no trace matches"),
    (["rm", "deadbeef"], 2, "no trace matches"),
    (["rm"], 2, "Missing argument"),
    (["prune", "--older-than", "forever"], 2, "bad --older-than"),
    (["prune"], 2, "Missing option '--older-than'"),
    (["show", "last", "--span", "nope"], 2, "no span of trace"),
    (["show", "--width-limit", "3"], 2, "Invalid value"),
]


@pytest.mark.parametrize("argv, code, message", CASES, ids=[" ".join(c[0])[:40] for c in CASES])
def test_bad_input(files, argv, code, message):
    argv = [a.replace("{tmp}", str(files)) for a in argv]
    if argv[0] in ("feedback", "tag") or "--span" in argv:
        assert run_cli("run", "-q", str(AGENTS / "behaves_like_python.py")).code == 0  # a trace to point at
    r = run_cli(*argv)
    if message is None:  # SQL-looking values are just values
        assert r.code == code and "Traceback" not in r.stderr, r.stderr
        return
    assert r.code == code, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("llmtrace: error: ") and message in lines[0], lines[0]
    assert "Traceback" not in r.stderr


def test_store_not_writable(tmp_path, monkeypatch):
    import subprocess

    home = tmp_path / "ro"
    home.mkdir()
    if os.geteuid() == 0:  # root ignores modes; an immutable folder binds root too
        _immutable(home)
        undo = ["chattr", "-i", str(home)]
    else:
        home.chmod(0o500)
        undo = ["chmod", "700", str(home)]
    monkeypatch.setenv("LLMTRACE_HOME", str(home))
    try:
        r = run_cli("run", str(AGENTS / "behaves_like_python.py"))
    finally:
        subprocess.run(undo, check=True)
    assert r.code == 4 and "llmtrace: error:" in r.stderr and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and not list(home.iterdir())


def _immutable(path) -> None:
    """chattr +i `path`, or skip (fail on CI) where the filesystem does not have it."""
    import shutil
    import subprocess

    if not shutil.which("chattr") or subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
        skip_unless_ci("cannot make the store read-only here as root (no chattr +i on this filesystem)")


def test_store_path_unusable(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("LLMTRACE_HOME", str(blocker / "sub"))  # parent is a file: cannot be created
    r = run_cli("run", str(AGENTS / "behaves_like_python.py"))
    assert r.code == 4, r.stderr
    assert r.stderr.count("\n") == 1 and "cannot create the trace store" in r.stderr


def test_store_not_a_database(llmtrace_home):
    llmtrace_home.mkdir(parents=True)
    (llmtrace_home / "traces.db").write_bytes(b"this is not sqlite" * 100)
    r = run_cli("run", str(AGENTS / "behaves_like_python.py"))
    assert r.code == 4 and "not a readable llmtrace store" in r.stderr and "Traceback" not in r.stderr
    assert (llmtrace_home / "traces.db").read_bytes() == b"this is not sqlite" * 100  # left alone


def test_store_from_newer_schema(llmtrace_home):
    import sqlite3

    llmtrace_home.mkdir(parents=True)
    db = sqlite3.connect(llmtrace_home / "traces.db")
    db.execute("PRAGMA user_version = 999")
    db.close()
    r = run_cli("ls")
    assert r.code == 4 and "newer llmtrace" in r.stderr


def test_ambiguous_prefix_lists_candidates(llmtrace_home):
    for n in (1, 2):
        assert run_cli("run", "-q", "--trace-id", f"abcdef12-0000-4000-8000-00000000000{n}", str(AGENTS / "behaves_like_python.py")).code == 0
    r = run_cli("show", "abcdef")
    assert r.code == 2 and r.stderr.count("\n") == 1
    assert "ambiguous" in r.stderr and "abcdef12-0000" in r.stderr
    assert run_cli("show", "abcdef12-0000-4000-8000-000000000002").code == 0


def test_span_not_found(llmtrace_home):
    assert run_cli("run", "-q", str(AGENTS / "behaves_like_python.py")).code == 0
    r = run_cli("show", "last", "--span", "ffffffff")
    assert r.code == 2 and "no span of trace" in r.stderr and r.stderr.count("\n") == 1


def test_read_only_store(llmtrace_home):
    """A store that cannot be written: read commands still read it, writes fail in one line, bytes kept."""
    import subprocess

    assert run_cli("run", "-q", str(AGENTS / "behaves_like_python.py")).code == 0
    db_file = llmtrace_home / "traces.db"
    if os.geteuid() == 0:  # root ignores modes; an immutable file binds root too
        _immutable(db_file)
        undo = ["chattr", "-i", str(db_file)]
    else:
        db_file.chmod(0o400)
        undo = ["chmod", "600", str(db_file)]
    before = db_file.read_bytes()
    try:
        ls = run_cli("ls")
        assert ls.code == 0 and "behaves_like_python.py" in ls.stdout
        assert run_cli("show", "last").code == 0 and run_cli("cost").code == 0
        for argv in (["run", str(AGENTS / "behaves_like_python.py")], ["tag", "last", "a=b"], ["feedback", "last", "--score", "1"]):
            r = run_cli(*argv)
            assert r.code == 4 and r.stderr.strip().count("\n") == 0 and "not writable" in r.stderr, (argv, r.stderr)
        assert db_file.read_bytes() == before
    finally:
        subprocess.run(undo, check=True)
