"""What the commands share: consoles, the store, one-line errors, and the small conversions their options need.

Imported by `llmtrace run`'s fast path too, so nothing here imports typer, and rich only when a console is made.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from llmtrace.errors import ExitCode, UserError


def plain_style() -> dict[str, Any]:
    """NO_COLOR (https://no-color.org, any non-empty value): no ANSI styles at all, not even bold or dim,
    even on a terminal or with FORCE_COLOR. Rich's own no_color keeps those; no colour system drops every style."""
    if os.environ.get("NO_COLOR"):
        return {"no_color": True, "color_system": None}
    return {}


def stderr_console() -> Any:
    from rich.console import Console

    # Wrapped at the terminal's width on a terminal only: files and CI logs get whole lines.
    return Console(stderr=True, highlight=False, soft_wrap=not sys.stderr.isatty(), **plain_style())


def styled_stderr() -> bool:
    """Whether rich would style or wrap what goes to stderr: a terminal, or an environment that forces one."""
    return sys.stderr.isatty() or "FORCE_COLOR" in os.environ or "TTY_COMPATIBLE" in os.environ


def parse_tags(values: list[str] | None) -> dict[str, str]:
    tags: dict[str, str] = {}
    for raw in values or []:
        key, sep, value = raw.partition("=")
        if not sep or not key.strip():
            raise UserError(f"bad tag {raw!r}: expected key=value")
        tags[key.strip()] = value.strip()
    return tags


def open_cli_store(write: bool = True) -> Any:
    from llmtrace.store import open_store

    return open_store(write=write)


def guarded(command: Any) -> None:
    """Run a command, turning the user's mistakes and a damaged store into one line and an exit code."""
    try:
        command()
    except UserError as e:
        print(f"llmtrace: error: {e}", file=sys.stderr)
        sys.exit(int(e.code))
    except KeyboardInterrupt:  # before the script started (the runner handles Ctrl-C in it)
        sys.exit(int(ExitCode.INTERRUPTED))
    except BrokenPipeError:
        sys.exit(0)
    except sqlite3.DatabaseError as e:  # damaged file, or locked past the busy timeout
        print(f"llmtrace: error: the trace store cannot be read or written ({e})", file=sys.stderr)
        sys.exit(int(ExitCode.STORE))


def stdout_console() -> Any:
    from rich.console import Console

    # Piped output is not squeezed into 80 columns: tables stay whole for grep, files and less -S.
    wide = not sys.stdout.isatty() and not os.environ.get("COLUMNS")
    return Console(highlight=False, width=200 if wide else None, **plain_style())


def period(since: str | None, until: str | None) -> tuple[int | None, int | None]:
    import llmtrace.timespec as timespec

    s = timespec.parse_time(since, option="--since") if since else None
    u = timespec.parse_time(until, option="--until") if until else None
    if s is not None and u is not None and u <= s:
        raise UserError(f"--until {until!r} is not after --since {since!r}")
    return s, u



def page(renderable: Any, *, pager: bool = True, soft_wrap: bool = False) -> None:
    """Print to stdout; long output goes through a pager when stdout is a terminal, like git."""
    console = stdout_console()
    if pager and console.is_terminal:
        with console.capture() as cap:
            console.print(renderable, soft_wrap=soft_wrap)
        if cap.get().count("\n") > console.height:
            os.environ.setdefault("LESS", "FRX")
            with console.pager(styles=True):
                console.print(renderable, soft_wrap=soft_wrap)
            return
    console.print(renderable, soft_wrap=soft_wrap)


def now_us() -> int:
    return time.time_ns() // 1000


def money(value: float | None) -> float | None:
    """A sum of float costs without its binary noise (0.0016199999999999977 → 0.00162): 12 decimals,
    10 significant digits, far finer than any price."""
    return None if value is None else float(f"{round(value, 12):.10g}")


def trace_json(trace: Any, streams: dict[str, Any] | None = None) -> dict[str, Any]:
    """A trace for `ls --json`: its fields, with ISO-8601 UTC `start` / `end` beside start_us / end_us
    (end null while it runs), its money rounded, and its streamed calls (count, mean time to first
    token, chunks) under `streamed`."""
    import llmtrace.timespec as timespec

    out: dict[str, Any] = {}
    for key, value in asdict(trace).items():
        out[key] = value
        if key in ("start_us", "end_us"):
            out[key[:-3]] = timespec.iso_utc(value)
    totals = out["totals"]
    for key in ("cost", "cost_saved"):
        totals[key] = money(totals[key])
    out["streamed"] = streams or {"calls": 0, "ttft_us": None, "chunks": None}
    return out


def select_traces(db: Any, traces: list[str] | None, since: str | None, until: str | None) -> list[str]:
    from llmtrace.store.queries import TraceFilter, list_traces, resolve_trace_id

    if not traces and not since and not until:
        raise UserError("say which traces: give trace ids (or last), or --since / --until")
    ids = [resolve_trace_id(db, t) for t in traces or []]
    if since or until:
        s, u = period(since, until)
        ids += [t.id for t in reversed(list_traces(db, TraceFilter(since_us=s, until_us=u, limit=None)))]
    return list(dict.fromkeys(ids))


def private_file(path: Path) -> Any:
    """`path` opened for writing text, owner-only (0600) like the store it comes from, whether it is new or not."""
    import stat

    try:
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror}") from None
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):  # not /dev/stdout or a named pipe
            os.fchmod(fd, 0o600)
    except OSError:
        pass
    return os.fdopen(fd, "w", encoding="utf-8")
