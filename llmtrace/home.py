"""Where llmtrace keeps its files: LLMTRACE_HOME, else the platform's user data directory."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    env = os.environ.get("LLMTRACE_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("llmtrace", appauthor=False))


def store_path() -> Path:
    return home() / "traces.db"
