"""Safe on a shared machine, with hostile files, and when the disk fills (issue 32, the file-system half).

Nothing llmtrace reads back from disk may run code: a pickle planted in a spool or a response cache is
refused, never loaded. A home or cache folder someone else could have planted files in is refused with
one line. Temporary files are created exclusively, never written through a planted symbolic link; the
start-up hook child processes import lives in a folder of the run's own. A disk that fills mid-run
costs spans, with a warning, never the traced script. One bad character never costs a batch of spans.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import sqlite3
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from conftest import AGENTS, last_trace, run_cli, server_env

CI = os.environ.get("CI", "").lower() == "true"


class _Planted:
    """What an attacker plants: unpickling it creates `marker` (any code could run instead)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _one_line_refusal(result, *words: str) -> None:
    assert result.code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("llmtrace: error:"), result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def _another_user() -> int:
    """The uid of a user other than this one, owning a folder the test makes (chown needs root)."""
    if os.geteuid() != 0:
        if CI:
            pytest.fail("CI runs as root: the shared-folder test must run there")
        pytest.skip("giving a folder to another user needs root (chown); this test runs as a normal user")
    import pwd

    for name in ("nobody", "llmtrace-other"):
        try:
            return pwd.getpwnam(name).pw_uid
        except KeyError:
            continue
    made = subprocess.run(["useradd", "--system", "--no-create-home", "llmtrace-other"], capture_output=True, text=True)
    try:
        return pwd.getpwnam("llmtrace-other").pw_uid
    except KeyError:
        if CI:
            pytest.fail(f"cannot create a second user: {made.stderr.strip()}")
        pytest.skip(f"this machine does not allow a second user: {made.stderr.strip()}")


# --- item 1: folders that are not the user's own -----------------------------------------------------

def test_a_home_or_cache_folder_someone_else_could_write_is_refused(tmp_path, monkeypatch, mock_server):
    other = _another_user()
    home = tmp_path / "shared-home"
    home.mkdir(mode=0o700)
    os.chown(home, other, -1)
    monkeypatch.setenv("LLMTRACE_HOME", str(home))
    _one_line_refusal(run_cli("ls"), str(home), "another user")
    assert not (home / "traces.db").exists()

    home.chmod(0o777)  # a folder under /tmp anyone may have made, made writable for the team
    os.chown(home, 0, -1)
    _one_line_refusal(run_cli("ls"), str(home), "group or others may write it")
    home.chmod(0o700)
    assert run_cli("ls").code == 0

    cache = tmp_path / "team-cache"
    cache.mkdir()
    cache.chmod(0o775)
    _one_line_refusal(run_cli("cache", "stats", "--cache-dir", str(cache)), str(cache), "group or others")
    server = mock_server()
    result = run_cli("run", "--cache-dir", str(cache), str(AGENTS / "one_call.py"), "hi", env=server_env(server))
    _one_line_refusal(result, str(cache), "group or others")
    assert server.stats.requests == 0  # refused before the script ran
    os.chown(cache, other, -1)
    cache.chmod(0o700)
    result = run_cli("run", "--cache-dir", str(cache), str(AGENTS / "one_call.py"), "hi", env=server_env(server))
    _one_line_refusal(result, str(cache), "another user")

    # A folder llmtrace makes itself is the user's alone.
    fresh = tmp_path / "new-home"
    monkeypatch.setenv("LLMTRACE_HOME", str(fresh))
    assert run_cli("ls").code == 0
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o700


# --- item 1: no pickle on any read path --------------------------------------------------------------

def test_a_pickle_planted_in_the_spool_is_never_loaded(llmtrace_home, tmp_path):
    marker = tmp_path / "ran"
    assert run_cli("ls").code == 0  # the home and its store
    payload = pickle.dumps(_Planted(marker))
    record = b"C" + len(payload).to_bytes(4, "little") + payload
    spool = llmtrace_home / "spool"
    spool.mkdir(mode=0o700, exist_ok=True)
    (spool / f"{uuid.uuid4()}.spool").write_bytes(record)
    result = run_cli("ls")
    assert result.code == 0 and "Traceback" not in result.stderr
    assert not marker.exists(), "the planted pickle was loaded"
    assert "older format (pickle)" in result.stderr
    assert not list(spool.glob("*.spool"))  # read once, not again at every command


def test_pickles_planted_in_a_response_cache_are_never_loaded(llmtrace_home, tmp_path, mock_server):
    import diskcache

    marker = tmp_path / "ran"
    cache = tmp_path / "cache"
    server = mock_server()
    env = server_env(server)
    first = run_cli("run", "--cache-dir", str(cache), str(AGENTS / "one_call.py"), "hello", env=env)
    assert first.code == 0, first.stderr
    asked = server.stats.requests
    # Every stored answer replaced by a pickle, and a pickled key beside them (as diskcache writes both).
    db = sqlite3.connect(str(cache / "cache.db"))
    with db:
        n = db.execute("UPDATE Cache SET mode = 4, value = ?", (pickle.dumps(_Planted(marker)),)).rowcount
    db.close()
    assert n >= 1
    with diskcache.Cache(str(cache)) as planted:
        planted.set(("r", _Planted(marker)), b"x")
        planted.set("s:" + "0" * 64, [_Planted(marker)])
    assert not marker.exists()

    stats = run_cli("cache", "stats", "--json", "--cache-dir", str(cache))
    assert stats.code == 0 and not marker.exists(), stats.stderr
    assert json.loads(stats.stdout)["entries"] >= 1 and "older format (pickle)" in stats.stderr

    again = run_cli("run", "--cache-dir", str(cache), str(AGENTS / "one_call.py"), "hello", env=env)
    assert again.code == 0 and not marker.exists(), again.stderr
    assert again.stdout == first.stdout and server.stats.requests == asked + 1  # a miss: asked again
    assert "older format (pickle)" in again.stderr and "Traceback" not in again.stderr

    cleared = run_cli("cache", "clear", "--older-than", "1000d", "--cache-dir", str(cache))
    assert cleared.code == 0 and not marker.exists(), cleared.stderr
    with diskcache.Cache(str(cache)) as left:
        assert left._sql("SELECT count(*) FROM Cache WHERE raw = 0 OR mode = 4").fetchone()[0] == 0


def test_a_cache_entry_keeps_no_secret_in_its_headers(tmp_path):
    from llmtrace.store.cache import CacheSettings, ResponseCache
    from llmtrace.redact import Redactor

    secret = "sk-proj-HEADERsecretNEVERonDISK0123456789"
    cache = ResponseCache(CacheSettings(directory=tmp_path / "c"))
    cache.redactor = Redactor({"a-known-secret-value"})
    cache.write_behind = False
    cache.set("a" * 64 + ".0", 200, [["content-type", "application/json"], ["set-cookie", "session=abc123"],
                                      ["x-echo", f"Bearer {secret}"], ["x-note", "a-known-secret-value"]],
              [b"{}"], False)
    cache.close()
    raw = (tmp_path / "c" / "cache.db").read_bytes()
    assert secret.encode() not in raw and b"session=abc123" not in raw and b"a-known-secret-value" not in raw
    again = ResponseCache(CacheSettings(directory=tmp_path / "c"))
    headers = dict(again.get("a" * 64 + ".0")["headers"])
    again.close()
    assert headers["content-type"] == "application/json" and headers["set-cookie"] == "[REDACTED]"
    assert secret not in headers["x-echo"] and "[REDACTED]" in headers["x-note"]


# --- item 1: temporary files and the children's start-up hook ----------------------------------------

def test_temporary_files_are_never_written_through_a_planted_link(tmp_path, monkeypatch):
    from llmtrace import pricing
    from llmtrace.core import inflight
    from llmtrace.model import Span

    victim = tmp_path / "victim"
    victim.write_text("precious")

    # The in-flight publisher.
    live = tmp_path / "live"
    live.mkdir()
    path = live / "trace.json"
    path.with_suffix(f".{os.getpid()}.tmp").symlink_to(victim)

    class Open:
        def open_spans(self):
            return [Span(id="s", trace_id="trace", parent_id=None, kind="llm", name="x", start_us=0)]

    inflight.InFlightPublisher(Open(), path).publish()
    assert json.loads(path.read_text())[0][0] == "s"
    assert victim.read_text() == "precious"

    # The remembered prices.
    units = tmp_path / "units" / "price-units.json"
    units.parent.mkdir()
    units.with_suffix(f".{os.getpid()}.tmp").symlink_to(victim)
    monkeypatch.setenv("LLMTRACE_PRICE_UNITS", str(units))
    pricing._units.cache_clear()
    try:
        assert pricing.cost("gpt-4o-mini", "openai", 1000, 100) is not None
    finally:
        pricing._units.cache_clear()
    assert victim.read_text() == "precious"
    if units.exists():
        assert stat.S_IMODE(units.stat().st_mode) == 0o600

    # The children's start-up hook.
    from llmtrace.core import children

    home = tmp_path / "home"
    (home / "boot").mkdir(parents=True, mode=0o700)
    (home / "boot" / f".sitecustomize.{os.getpid()}.tmp").symlink_to(victim)
    monkeypatch.setenv("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv(children.ENV, "")
    children.arm("t", tmp_path / "spool", home, {})
    assert victim.read_text() == "precious"
    boot = Path(os.environ["PYTHONPATH"].split(os.pathsep)[0])
    assert boot.parent == home / "boot" and (boot / "sitecustomize.py").is_file()
    assert stat.S_IMODE(boot.stat().st_mode) == 0o700 and boot.stat().st_uid == os.geteuid()


CHILD = '''\
import subprocess, sys
out = subprocess.run([sys.executable, "-c", "import os, sitecustomize; print(os.path.dirname(sitecustomize.__file__))"],
                     capture_output=True, text=True, check=True).stdout.strip()
print(out)
'''


def test_the_childrens_hook_lives_in_a_private_folder_of_the_run(llmtrace_home, tmp_path):
    script = tmp_path / "spawns.py"
    script.write_text(CHILD)
    result = run_cli("run", "-q", str(script))
    assert result.code == 0, result.stderr
    boot = Path(result.stdout.strip().splitlines()[-1])
    assert boot.parent == llmtrace_home / "boot"  # a folder of the run's own, not boot/ itself
    assert not boot.exists()  # removed when the run ended
    assert not (llmtrace_home / "boot" / "sitecustomize.py").exists()


def test_a_boot_folder_that_cannot_be_written_costs_the_children_only(llmtrace_home, tmp_path):
    assert run_cli("ls").code == 0
    (llmtrace_home / "boot").write_text("not a folder")  # as unwritable as a folder of someone else's, for root too
    script = tmp_path / "spawns.py"
    script.write_text(CHILD.replace("check=True", "check=False"))
    result = run_cli("run", "-q", str(script))
    assert result.code == 0, result.stderr
    assert "Traceback" not in result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("llmtrace: warning")]
    assert len(warnings) == 1 and "child processes are not traced" in warnings[0]


# --- item 3: a disk that fills mid-run -----------------------------------------------------------------

FILLS = '''\
import os, sys
from langchain_openai import ChatOpenAI

fill = sys.argv[1]
llm = ChatOpenAI(model="gpt-4o-mini", max_retries=0)
for i in range(30):
    if i == 8:  # the disk fills: the script writes until there is no space left, and keeps the file
        fd = os.open(fill, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"x" * 4096)
        except OSError:
            pass
        os.close(fd)
    reply = llm.invoke(f"call {i}: " + "y" * 100_000)
    print(i, len(reply.content), flush=True)
'''


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir(mode=0o700)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        if CI:
            pytest.fail("CI runs as root: the full-disk test must run there")
        pytest.skip("mounting a small tmpfs needs root and mount(8)")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        if CI:
            pytest.fail(f"cannot mount a tmpfs: {made.stderr.strip()}")
        pytest.skip(f"this machine does not allow mounting a tmpfs: {made.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_disk_that_fills_mid_run_costs_spans_not_the_script(small_disk, tmp_path, mock_server):
    script = tmp_path / "fills.py"
    script.write_text(FILLS)
    server = mock_server()
    home = small_disk / "home"
    result = run_cli("run", str(script), str(small_disk / "filler"),
                     env={**server_env(server), "LLMTRACE_HOME": str(home), "LLMTRACE_BUSY_TIMEOUT_MS": "2000"})
    assert result.code == 0, (result.code, result.stderr[-2000:])
    assert [line.split()[0] for line in result.stdout.splitlines()[:30]] == [str(i) for i in range(30)]
    assert "llmtrace: warning" in result.stderr and "Traceback" not in result.stderr
    # Space again: the next command stores what the spool kept; nothing fails for what it lost.
    (small_disk / "filler").unlink()
    shown = run_cli("ls", env={"LLMTRACE_HOME": str(home)})
    assert shown.code == 0, shown.stderr


# --- item 5: a lone surrogate -------------------------------------------------------------------------

def test_a_lone_surrogate_costs_no_span(llmtrace_home, tmp_path, mock_server):
    server = mock_server({"model": "gpt\udc80"})
    script = tmp_path / "calls.py"
    script.write_text(
        "from langchain_openai import ChatOpenAI\n"
        "llm = ChatOpenAI(model='gpt-4o-mini', max_retries=0)\n"
        "for i in range(20):\n"  # past the helper's start: its batches as well as the run's own end
        "    print(llm.invoke(f'call {i}').response_metadata['model_name'].encode('utf-8', 'backslashreplace'))\n"
    )
    result = run_cli("run", "-q", str(script), env=server_env(server))
    assert result.code == 0, result.stderr
    assert "could not write spans" not in result.stderr
    trace, spans = last_trace(llmtrace_home)
    llm = [s for s in spans if s.kind == "llm"]
    assert len(llm) == 20 and trace.totals.llm_calls == 20
    assert {s.model for s in llm} == {"gpt\ufffd"}
    assert not list((llmtrace_home / "spool").glob("*.spool"))
    shown = run_cli("show", "last")
    assert shown.code == 0 and "gpt" in shown.stdout


def test_a_value_sqlite_cannot_take_costs_that_span_alone(tmp_path):
    """A batch of rows with one bad value in it: the others are stored."""
    from llmtrace.model import Span, Trace
    from llmtrace.redact import Redactor
    from llmtrace.store import open_store
    from llmtrace.store.writer import StoreWriter

    writer = StoreWriter(open_store(tmp_path / "traces.db"), Redactor())
    writer.start_trace(Trace(id="t", name="n\udc80", start_us=0, cwd="/odd\udcff/dir"))
    spans = [Span(id=f"s{i}", trace_id="t", parent_id=None, kind="llm", name="call", start_us=i) for i in range(5)]
    rows = [writer.rows(s) for s in spans]
    from llmtrace.store.schema import SPAN_COLUMNS

    rows[2][0][SPAN_COLUMNS.index("start_us")] = 1 << 80  # an integer past SQLite's 64 bits
    writer.write_rows(rows)
    ids = [r[0] for r in writer.db.execute("SELECT id FROM spans ORDER BY id")]
    assert ids == ["s0", "s1", "s3", "s4"]
    assert writer.db.execute("SELECT name, cwd FROM traces").fetchone() == ("n\ufffd", "/odd\ufffd/dir")
