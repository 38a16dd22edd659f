"""Child processes of a traced run join its trace, the way coverage.py measures subprocesses.

The runner puts the trace id, the spool folder and the cache/retry settings in LLMTRACE_CHILD and
prepends a folder holding a `sitecustomize.py` to PYTHONPATH, so any Python child (a `spawn` or
`forkserver` multiprocessing worker, `subprocess.run([sys.executable, …])`) starts recording
before its own code runs. A `fork` child re-arms in `os.register_at_fork`. Each child spools to a
file of its own (`<trace>.<pid>.spool`) and copies it into the store as the parent does (its own
helper process), so its spans are visible while it runs; nothing is lost when it exits or is
killed (the parent, or the next command, loads what is left). Its spans hang under the LangChain
run that was current where it was forked, or at the top of the trace; with `--split` each
invocation it makes is a trace of its own, as in the parent.

LLMTRACE_CHILDREN=0 (or `run --no-children`) leaves child processes untraced.
"""

from __future__ import annotations

import atexit
import json
import os
from pathlib import Path
from typing import Any

ENV = "LLMTRACE_CHILD"

_SITECUSTOMIZE = '''\
# Written by llmtrace: Python child processes of a traced run join its trace (see llmtrace/core/children.py).
import os as _os
import sys as _sys

if _os.environ.get("LLMTRACE_CHILD"):
    try:
        from llmtrace.core.boot import start_when_used as _start

        _start()
    except Exception:
        pass

# Then the sitecustomize this one shadows, if there is one.
_here = _os.path.dirname(_os.path.abspath(__file__))
_path = _sys.path[:]
_me = _sys.modules.pop("sitecustomize", None)
try:
    _sys.path[:] = [p for p in _path if _os.path.abspath(p or ".") != _here]
    import sitecustomize  # noqa: F401
except ImportError:
    pass
finally:
    _sys.path[:] = _path
    if _me is not None:  # the import that is running this file expects to find it there
        _sys.modules["sitecustomize"] = _me
'''



def enabled() -> bool:
    return os.environ.get("LLMTRACE_CHILDREN", "1").strip().lower() not in ("0", "no", "false", "off")


def arm(trace_id: str, spool_dir: Path, home: Path, options: dict[str, Any], run: dict[str, Any] | None = None) -> None:
    """In the traced process: make children (started from now on) join trace `trace_id`. `run`
    (`run_spec`): what a child needs to write to the store itself, live."""
    if not enabled():
        return
    boot = _private_boot(home)
    if boot is None:
        return
    spec = {"trace_id": trace_id, "spool_dir": str(spool_dir), "options": options}
    if run is not None:
        spec["run"] = run
    os.environ[ENV] = json.dumps(spec)
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(boot)]
    os.environ["PYTHONPATH"] = os.pathsep.join([str(boot), *paths])


def _private_boot(home: Path) -> Path | None:
    """A folder of this run's own (made by mkdtemp: 0700, a name no one could guess) holding the
    sitecustomize children import, removed when the run ends; None, said once, if none can be made
    (children then go untraced). Folders of earlier runs that ended without removing theirs go too."""
    import shutil
    import sys
    import tempfile

    parent = home / "boot"
    try:
        parent.mkdir(exist_ok=True, mode=0o700)
        _sweep(parent)
        boot = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=parent))
        fd = os.open(boot / "sitecustomize.py", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(_SITECUSTOMIZE)
    except OSError as e:
        print(f"llmtrace: warning: child processes are not traced (cannot write in {parent}: {e.strerror or e})",
              file=sys.stderr)
        return None
    pid = os.getpid()
    atexit.register(lambda: os.getpid() == pid and shutil.rmtree(boot, ignore_errors=True))  # not a fork's exit
    return boot


def _sweep(parent: Path) -> None:
    import shutil

    from llmtrace.store.procs import pid_alive

    for entry in os.scandir(parent):
        pid = entry.name.split("-")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            shutil.rmtree(entry.path, ignore_errors=True)


def environ_before_arming() -> dict[str, str | None]:
    """What `arm` changes in os.environ, as it is now: a session started inside a long-lived process
    (the Python API, a notebook) puts it back with `restore_environ` when it finishes."""
    return {name: os.environ.get(name) for name in (ENV, "PYTHONPATH")}


def restore_environ(saved: dict[str, str | None]) -> None:
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def spec_from_env() -> dict[str, Any] | None:
    """In a child process: what its parent armed it with (trace id, spool folder, options), or None."""
    raw = os.environ.get(ENV)
    if not raw or not enabled():
        return None
    return json.loads(raw)


def options_for_children(opts: Any) -> dict[str, Any]:
    """The run options a child needs to cache and retry as its parent does (JSON-able)."""
    return {
        "cache": opts.cache, "cache_dir": str(opts.cache_dir) if opts.cache_dir else None,
        "cache_ttl_s": opts.cache_ttl_s, "cache_size_mb": opts.cache_size_mb, "cache_mode": opts.cache_mode,
        "retries": opts.retries, "mock_url": opts.mock_url, "offline": opts.offline,
    }



def run_spec(trace: Any, db_path: str, opts: Any) -> dict[str, Any]:
    """What a child needs of the run to store its spans (and, split, its own traces) live, and stream
    them to OTLP as the parent does (the endpoint and headers the user gave the run)."""
    return {"db": db_path, "split": opts.split, "name": trace.name, "script": trace.script, "argv": trace.argv,
            "cwd": trace.cwd, "version": trace.version, "tags": trace.tags, "otlp_url": opts.otlp_url,
            "otlp_headers": opts.otlp_headers}
