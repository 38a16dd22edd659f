"""Where llmtrace keeps its files: LLMTRACE_HOME, else the platform's user data directory."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def home() -> Path:
    env = os.environ.get("LLMTRACE_HOME")
    if env:
        return Path(env).expanduser()
    return user_dir("data") / "llmtrace"


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
