"""Small formatting helpers shared by the renderers: durations, tokens, money, local times."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

STATUS_STYLE = {"ok": "green", "error": "bold red", "running": "yellow", "interrupted": "magenta", "killed": "bold red",
                "over-budget": "bold magenta"}


def duration(us: int | None) -> str:
    if us is None:
        return "—"
    s = us / 1e6
    if s < 1:
        return f"{us / 1000:.0f}ms"
    if s < 60:
        return f"{s:.2f}s"
    m, s = divmod(int(s), 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


def count(n: int | None) -> str:
    return "—" if n is None else f"{n:,}"


def money(value: float | None, unpriced: int = 0) -> str:
    if value is None:
        return "unpriced"
    text = "$0" if value == 0 else (f"${value:.6f}" if value < 0.01 else f"${value:,.4f}")
    return text + (f" (+{unpriced} unpriced)" if unpriced else "")


def when(us: int, now_us: int, tz: Any = None) -> str:
    """Relative for the last day ("5m ago"), local date and time before that."""
    ago = (now_us - us) / 1e6
    if 0 <= ago < 60:
        return f"{int(ago)}s ago"
    if 0 <= ago < 3600:
        return f"{int(ago // 60)}m ago"
    if 0 <= ago < 86400:
        return f"{int(ago // 3600)}h {int(ago % 3600 // 60)}m ago"
    return local_time(us, tz)[:16]


def score(feedback: list[Any]) -> str:
    if not feedback:
        return ""
    avg = sum(f.score for f in feedback) / len(feedback)
    return f"{avg:+.1f}" + (f" ({len(feedback)})" if len(feedback) > 1 else "")


def local_time(us: int, tz: Any = None) -> str:
    dt = datetime.fromtimestamp(us / 1e6, tz=timezone.utc).astimezone(tz)
    return dt.strftime("%Y-%m-%d %H:%M:%S")


def short_json(value: Any, limit: int = 80) -> str:
    if isinstance(value, dict) and value.get("llmtrace_truncated"):
        head = short_json(value.get("head", ""), max(10, limit - 30))
        return f"[truncated: {value.get('bytes', 0):,} bytes] {head}"
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
        except (TypeError, ValueError):
            text = repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def call(name: str, args: Any, limit: int = 80) -> str:
    """`name(a=1, b=2)` for a dict of arguments, `name(value)` otherwise."""
    if isinstance(args, dict):
        inner = ", ".join(f"{k}={short_json(json.dumps(v, ensure_ascii=False) if isinstance(v, str) else v, 40)}" for k, v in args.items())
    elif args is None:
        inner = ""
    elif isinstance(args, str):
        inner = short_json(json.dumps(args, ensure_ascii=False), limit)
    else:
        inner = short_json(args, limit)
    text = f"{name}({inner})"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def frames(stack: str | None, n: int = 3) -> list[str]:
    """The last `n` frames of a python traceback, each its `  File "…", line N, in f` line and the source
    line after it (when python printed one); of a chained one, the frames of the exception raised last."""
    if not isinstance(stack, str):
        return []
    lines = stack.splitlines()
    start = max((i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")), default=0)
    found: list[list[str]] = []
    for line in lines[start:]:
        if line.startswith('  File "'):
            found.append([line])
        elif found and len(found[-1]) == 1 and line.startswith("    ") and line.strip(" ^~"):  # not 3.11's ^^^ markers
            found[-1].append(line)
    return [line for frame in found[-n:] for line in frame]


def number(value: Any) -> str:
    """A score or similar: floats to 3 decimals at most."""
    if not isinstance(value, float):
        return str(value)
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return f"{value:.3g}" if text in ("0", "-0") and value != 0 else text


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"
