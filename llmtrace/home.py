"""Where llmtrace keeps its files: LLMTRACE_HOME, else the platform's user data directory.

Every folder llmtrace reads from must be the user's own, as OpenSSH asks of ~/.ssh: a home or cache
folder another user owns, or that group or others may write, could hold files planted by someone
else (a spool, a cache entry, a child process's start-up hook). Such a folder is refused.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

_checked: set[str] = set()  # folders found private in this process (a folder's owner and mode are the owner's to change)


def home() -> Path:
    env = os.environ.get("LLMTRACE_HOME")
    path = Path(env).expanduser() if env else user_dir("data") / "llmtrace"
    return private_dir(path, "the trace store's folder (LLMTRACE_HOME)")


def user_dir(kind: str) -> Path:
    """The user's "data" or "cache" folder: on Linux the XDG one, as platformdirs gives it (without the
    cost of importing platformdirs into every run), elsewhere platformdirs'."""
    if sys.platform.startswith("linux"):
        xdg = os.environ.get(f"XDG_{kind.upper()}_HOME", "").strip()
        return Path(xdg) if xdg else Path.home() / (".local/share" if kind == "data" else ".cache")
    import platformdirs

    return Path(platformdirs.user_data_dir() if kind == "data" else platformdirs.user_cache_dir())


def store_path() -> Path:
    return home() / "traces.db"


def private_dir(path: Path, what: str) -> Path:
    """`path`, created owner-only if missing; a UserError (one line) if another user owns it or group or
    others may write it. Created first, then checked: a folder someone else made in between is seen."""
    key = str(path)
    if key in _checked or not hasattr(os, "geteuid"):
        return path
    from llmtrace.errors import ExitCode, UserError

    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        st = path.stat()
    except OSError as e:
        raise UserError(f"cannot create {what} at {path}: {e.strerror or e}", ExitCode.STORE) from None
    if not stat.S_ISDIR(st.st_mode):
        raise UserError(f"cannot use {path} as {what}: not a folder", ExitCode.STORE)
    if st.st_uid not in (os.geteuid(), 0):
        raise UserError(f"refusing {path} as {what}: it belongs to another user (uid {st.st_uid}); use a folder of "
                        "your own", ExitCode.STORE)
    if st.st_mode & 0o022:
        raise UserError(f"refusing {path} as {what}: group or others may write it (mode {stat.S_IMODE(st.st_mode):o}); "
                        f"chmod go-w {path}", ExitCode.STORE)
    _checked.add(key)
    return path
