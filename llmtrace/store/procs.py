"""Whether a process is still there: the writers of running traces and of child spools (no other imports,
so a run's start and end need not load the store's read side for it)."""

from __future__ import annotations

import os


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
