"""In a child process of a traced run: what the sitecustomize `children.arm` writes runs first.

Kept apart from core/session.py (and light: no SQLite, no LangChain) so that a child that never uses
what llmtrace captures pays only for this module's imports.
"""

from __future__ import annotations

import atexit
import os
from pathlib import Path
from typing import Any

from llmtrace.core import children


def start_when_used() -> None:
    """In a child process of a traced run (from the sitecustomize `arm` writes): record from the moment
    it imports something llmtrace captures (`capture.WATCHED`: LangChain, openai, anthropic, httpx), not
    before. A child that never does (multiprocessing's resource tracker, a compiler, a worker with no
    LLM in it) then costs what importing this module costs, not a session's start (~70 ms). Its spool
    file is made now, empty: the run is listed as running while this process lives, as before."""
    spec = children.spec_from_env()
    if spec is None:
        return
    import threading

    from llmtrace.capture import WATCHED, hooks

    lock, started, pid = threading.Lock(), [], os.getpid()
    marker = Path(spec["spool_dir"]) / f"{spec['trace_id']}.{pid}.spool"  # the file its session spools to
    try:
        marker.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600))
    except OSError:
        pass

    def start(_module: Any) -> None:
        with lock:
            if started:
                return
            started.append(True)
        from llmtrace.core.session import start_child

        start_child(spec)

    def unmark() -> None:  # a child that never recorded leaves no file (not a fork's exit: the file is its parent's)
        if not started and os.getpid() == pid:
            try:
                if marker.stat().st_size == 0:
                    marker.unlink()
            except OSError:
                pass

    atexit.register(unmark)
    for name in WATCHED:
        hooks.when_imported(name, start)
