"""A user's mistake gives one line on stderr, a documented exit code and no traceback."""

from __future__ import annotations

import os

import pytest

from conftest import AGENTS, run_cli


@pytest.fixture
def files(tmp_path):
    (tmp_path / "broken.py").write_text("def f(:\n    pass\n")
    (tmp_path / "binary.py").write_bytes(b"\x7fELF\x00\x01\x02")
    (tmp_path / "notes.txt").write_text("just some notes, not code at all {")
    (tmp_path / "adir").mkdir()
    return tmp_path


CASES = [
    (["run", "{tmp}/missing.py"], 3, "no such script"),
    (["run", "{tmp}/adir"], 3, "is a directory"),
    (["run", "{tmp}/binary.py"], 3, "not a Python script"),
    (["run", "{tmp}/notes.txt"], 3, "not a Python script"),
    (["run", "{tmp}/broken.py"], 3, "syntax error in"),
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
    (["ls", "--tag", "bad"], 2, "bad tag"),
]


@pytest.mark.parametrize("argv, code, message", CASES, ids=[" ".join(c[0])[:40] for c in CASES])
def test_bad_input(files, argv, code, message):
    argv = [a.replace("{tmp}", str(files)) for a in argv]
    r = run_cli(*argv)
    assert r.code == code, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("llmtrace: error: ") and message in lines[0], lines[0]
    assert "Traceback" not in r.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere; covered by the newer-schema and not-a-database cases")
def test_store_not_writable(tmp_path, monkeypatch):
    home = tmp_path / "ro"
    home.mkdir()
    home.chmod(0o500)
    monkeypatch.setenv("LLMTRACE_HOME", str(home))
    r = run_cli("run", str(AGENTS / "behaves_like_python.py"))
    assert r.code == 4 and "llmtrace: error:" in r.stderr and "Traceback" not in r.stderr


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
