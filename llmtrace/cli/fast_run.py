"""`llmtrace run`'s fast path: its common forms read without typer (see `llmtrace.entry`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# Options read here (each one's typer definition is in `llmtrace.cli.run`); any other token before the script
# sends the whole command line to typer.
_FLAGS = {"-q": "quiet", "--quiet": "quiet", "--no-cache": "no_cache", "--mock": "mock", "--no-children": "no_children",
          "--split": "split", "--semantic-cache": "semantic_cache"}
_VALUES = {"--name": "name", "--trace-id": "trace_id", "--cache-dir": "cache_dir", "--cache-ttl": "cache_ttl",
           "--cache-mode": "cache_mode", "--mock-script": "mock_script", "--tag": "tag", "--retries": "retries",
           "--project": "project", "--cache-size": "cache_size"}
_PATHS = {"cache_dir", "mock_script"}
_ENV_OPTIONS = ("LLMTRACE_MAX_COST", "LLMTRACE_MAX_CALLS", "LLMTRACE_MAX_TOKENS")  # typer reads these


def plain_run_args(argv: list[str]) -> dict[str, Any] | None:
    """`start_run`'s arguments from `llmtrace run ARGV` when the typer app would read it the same way and
    accept it; None when it should decide (help, an error to report, an option not read here)."""
    if any(os.environ.get(v) for v in _ENV_OPTIONS):
        return None
    kwargs: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        token = argv[i]
        if not token.startswith("-") or token == "-":
            break
        name, sep, value = token.partition("=")
        if not sep and token in _FLAGS:
            kwargs[_FLAGS[token]] = True
            i += 1
            continue
        if name not in _VALUES:
            return None  # --help, --, an option typer knows and this parser does not, a mistake
        if not sep:
            if i + 1 >= len(argv):
                return None
            value = argv[i + 1]
            i += 1
        i += 1
        key = _VALUES[name]
        if key == "tag":
            kwargs.setdefault("tag", []).append(value)
        elif key in ("retries", "cache_size"):
            if not value.isdigit():
                return None
            number = int(value)
            if (key == "retries" and number > 20) or (key == "cache_size" and number < 1):
                return None
            kwargs[key] = number
        elif key in _PATHS:
            kwargs[key] = Path(value)
        else:
            kwargs[key] = value
    if i >= len(argv):
        return None  # no script: typer says so
    return {"script_arg": argv[i], "args": argv[i + 1 :], **kwargs}
