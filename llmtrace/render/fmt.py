"""Small formatting helpers shared by the renderers: durations, tokens, money, local times, and text
from a trace made safe to show (`visible`, `clean`, `cell`)."""

from __future__ import annotations

import json
import re
from bisect import bisect_left
from datetime import datetime, timezone
from itertools import accumulate
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.text import Text

STATUS_STYLE = {"ok": "green", "error": "bold red", "running": "yellow", "interrupted": "magenta", "killed": "bold red",
                "over-budget": "bold magenta",
                "paused": "bold cyan"}


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
        except (TypeError, ValueError, RecursionError):  # a value nested past the stack (an imported file's)
            try:
                text = repr(value)
            except RecursionError:
                text = "[nested too deeply to show]"
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


# Everything a trace holds is untrusted: a model's answer, a tool's result or error, a reply's `model`
# field can carry terminal escapes (ESC[2J, OSC 8 links, OSC 52 clipboard writes, OSC 0 titles), C1
# controls (0x9b is CSI on its own), NUL, bidi overrides that reorder what is shown (Trojan Source),
# or lone surrogates (which no terminal encoding can write). Such characters are shown as `less` and
# `cat -v` show them: C0 controls and DEL in caret notation (ESC is ^[), the others as <U+XXXX>.
# Newline and tab stay (multi-line answers), and a CR before a newline goes, as rich drops it anyway.
_UNSAFE = re.compile("(?P<crlf>\r(?=\n))|[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _shown(m: re.Match[str]) -> str:
    if m.group("crlf"):
        return ""
    c = ord(m.group())
    if c < 0x20:
        return "^" + chr(c + 0x40)
    if c == 0x7F:
        return "^?"
    return f"<U+{c:04X}>"


def visible(text: str) -> str:
    """`text` with every control character made visible; normal text comes back as it is (the same object)."""
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(_shown, text)


def clean(text: "Text") -> "Text":
    """A rich Text with its control characters made visible (see `visible`), its styles kept on the
    same characters. Every renderer passes its lines through this before they are printed."""
    plain = text.plain
    if _UNSAFE.search(plain) is None:
        return text
    from rich.text import Span as StyleSpan

    found = [(m.start(), _shown(m)) for m in _UNSAFE.finditer(plain)]
    starts = [at for at, _ in found]
    grown = list(accumulate(len(shown) - 1 for _, shown in found))

    def moved(i: int) -> int:
        k = bisect_left(starts, i)  # the replacements before offset i
        return i + (grown[k - 1] if k else 0)

    out = text.blank_copy(_UNSAFE.sub(_shown, plain))
    out._spans = [StyleSpan(moved(s.start), moved(s.end), s.style) for s in text.spans]
    return out


def cell(value: Any, style: str = "") -> "Text":
    """A table cell from a trace's text: a Text (rich reads a plain str as markup, so a name like
    `[link=file:///etc/passwd]x` would become a live link) with its control characters made visible."""
    from rich.text import Text

    if isinstance(value, Text):
        return clean(value)
    return Text(visible(str(value)), style=style)
