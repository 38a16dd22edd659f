"""A corpus of hostile text: what a model, a tool or an imported file can put in a trace to attack the
terminal (escapes, C1 controls, NUL), rich (markup), a reader's eyes (bidi overrides), an encoder (lone
surrogates) or a renderer's time and stack (huge and deep values). Shared by the tests that run it
through every view.

`check_shown(out)` fails on what must never reach a terminal: any control character other than the
newline and tab, and any escape sequence other than rich's own colours (SGR, ESC[…m)."""

from __future__ import annotations

import re

ESCAPES = {
    "clear screen (CSI 2J)": "\x1b[2J\x1b[H",
    "colour (SGR)": "\x1b[31mred\x1b[0m",
    "OSC 8 hyperlink": "\x1b]8;;file:///etc/passwd\x1b\\click me\x1b]8;;\x1b\\",
    "OSC 52 clipboard write": "\x1b]52;c;cm0gLXJmIH4K\x07",
    "OSC 0 window title": "\x1b]0;owned\x07",
    "C1 CSI (0x9b)": "\x9b2J\x9b31m",
    "C1 OSC and ST (0x9d, 0x9c)": "\x9d0;title\x9c",
    "NUL": "nul\x00byte",
    "backspace, CR, BEL, VT, FF, DEL": "safe\rEVIL\x08\x08\x07\x0b\x0c\x7f",
    "device status report (answer-back)": "\x1b[6n\x1b[c",
}
MARKUP = {
    "rich link": "[link=file:///etc/passwd]x[/link]",
    "rich style": "[bold red]loud[/]",
    "rich emoji code": ":skull:",
}
OTHER = {
    "bidi override (Trojan Source)": "user\u202egnp.exe\u202c \u2066isolate\u2069",
    "lone surrogates": "half \ud800 pair \udfff",
    "html": "<script>alert(1)</script><img src=x onerror=alert(2)>",
}
HOSTILE = {**ESCAPES, **MARKUP, **OTHER}
# One string holding every attack: a field that shows one short text still meets them all.
EVERYTHING = " ".join(HOSTILE.values())

HUGE = "\x1b[2J" + "A" * 300_000 + "\x1b]52;c;dGFpbA==\x07"


def deep(depth: int = 500) -> object:
    value: object = "\x1b]0;deep\x07"
    for _ in range(depth):
        value = {"k\x1b[1m": [value]}
    return value


_SGR = re.compile(r"\x1b\[[0-9;]*m")
# What no output may hold once rich's own SGR colours are taken out.
_FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def check_shown(out: str, where: str = "") -> None:
    out.encode("utf-8")  # a lone surrogate would not even print
    rest = _SGR.sub("", out)
    bad = _FORBIDDEN.search(rest)
    assert bad is None, f"{where}: raw {bad.group()!r} reaches the output at {bad.start()}: {rest[max(0, bad.start() - 40):bad.start() + 40]!r}"
    assert "\x1b]8;" not in out, f"{where}: a live hyperlink"
