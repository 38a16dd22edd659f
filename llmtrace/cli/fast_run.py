"""`llmtrace run`'s fast path: its command line read without typer (see `llmtrace.entry`), from the same
table of options (`llmtrace.cli.settings`) the typer command is built from."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from llmtrace.cli.settings import BY_FLAG

_INT = re.compile(r"[0-9]{1,18}")
_DECIMAL = re.compile(r"[0-9]{1,15}(?:\.[0-9]{1,15})?")


def _number(kind: str, value: str, low: float | None, high: float | None) -> Any:
    if not (_INT if kind == "int" else _DECIMAL).fullmatch(value):
        return None  # a sign, an exponent, a mistake: typer's reading and its message
    number = int(value) if kind == "int" else float(value)
    if (low is not None and number < low) or (high is not None and number > high):
        return None
    return number


def plain_run_args(argv: list[str]) -> dict[str, Any] | None:
    """`start_run`'s arguments from `llmtrace run ARGV` (only the options given on the command line) when
    the typer app would read it the same way and accept it; None when it should decide (help, an error to
    report, a form not read here)."""
    given: dict[str, Any] = {}
    module = False
    i = 0
    while i < len(argv):
        token = argv[i]
        if not token.startswith("-") or token == "-":
            break
        if token == "-m":
            module = True
            i += 1
            continue
        name, sep, value = token.partition("=")
        o = BY_FLAG.get(name)
        if o is None:
            return None  # --help, --, an unknown option, -qx
        if o.kind == "flag":
            if sep:
                return None  # --quiet=1: typer's error
            given[o.key] = True
            i += 1
            continue
        if not sep:
            if i + 1 >= len(argv):
                return None
            value = argv[i + 1]
            i += 1
        i += 1
        if o.kind == "list":
            given.setdefault(o.key, []).append(value)
        elif o.kind in ("int", "float"):
            number = _number(o.kind, value, o.low, o.high)
            if number is None:
                return None
            given[o.key] = number
        elif o.kind == "path":
            given[o.key] = Path(value)
        else:
            given[o.key] = value
    if i >= len(argv):
        return None  # no script: typer says so
    return {"script_arg": argv[i], "args": argv[i + 1 :], **({"module": True} if module else {}), **given}
