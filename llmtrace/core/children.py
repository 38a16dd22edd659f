"""Child processes of a traced run join its trace, the way coverage.py measures subprocesses.

The runner puts the trace id, the spool folder and the cache/retry settings in LLMTRACE_CHILD and
prepends a folder holding a `sitecustomize.py` to PYTHONPATH, so any Python child (a `spawn` or
`forkserver` multiprocessing worker, `subprocess.run([sys.executable, …])`) starts recording
before its own code runs. A `fork` child re-arms in `os.register_at_fork`. Each child writes only
to a spool file of its own (`<trace>.<pid>.spool`): nothing is lost when it exits or is killed,
and the parent loads those files into the store when the run ends. Its spans hang under the
LangChain run that was current where it was forked, or at the top of the trace.

LLMTRACE_CHILDREN=0 (or `run --no-children`) leaves child processes untraced.
"""

from __future__ import annotations

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
        from llmtrace.core.session import start_child as _start

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


def arm(trace_id: str, spool_dir: Path, home: Path, options: dict[str, Any]) -> None:
    """In the traced process: make children (started from now on) join trace `trace_id`."""
    if not enabled():
        return
    boot = home / "boot"
    boot.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = boot / "sitecustomize.py"
    if not target.exists() or target.read_text() != _SITECUSTOMIZE:
        tmp = boot / f".sitecustomize.{os.getpid()}.tmp"
        tmp.write_text(_SITECUSTOMIZE)
        os.replace(tmp, target)
    os.environ[ENV] = json.dumps({"trace_id": trace_id, "spool_dir": str(spool_dir), "options": options})
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(boot)]
    os.environ["PYTHONPATH"] = os.pathsep.join([str(boot), *paths])


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
        "retries": opts.retries, "mock_url": opts.mock_url,
    }

