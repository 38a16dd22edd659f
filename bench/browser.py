"""Headless Chromium for `llmtrace view`'s tests, benchmark and screenshot: the system's own browser
(Debian's `chromium` package) driven by Playwright, so no browser is downloaded.

`LLMTRACE_CHROMIUM=/path/to/chrome` picks another Chromium-based browser.
"""

from __future__ import annotations

import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    explicit = os.environ.get("LLMTRACE_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else None
    for name in NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def in_ci() -> bool:
    """On CI (CI=true, as CI services and .ci/run set it) a missing browser fails the tests instead of skipping them."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing() -> str | None:
    """Why a headless browser cannot be started here, or None when it can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed: pip install -e '.[test]'"
    if find_chromium() is None:
        return "no Chromium on this machine: apt-get install chromium (or set LLMTRACE_CHROMIUM)"
    return None


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (Playwright Browser), closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=find_chromium(), headless=True)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Opened:
    """A page showing one file, with what it tried to fetch (blocked) and what it complained about."""

    page: Any
    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0  # from navigation to the page's script saying it has drawn and laid out


def open_file(browser: Any, path: Path, *, width: int = 1440, height: int = 860) -> Opened:
    """Open `path` in a fresh page; any request other than the file itself is blocked and recorded."""
    page = browser.new_page(viewport={"width": width, "height": height})
    uri = path.resolve().as_uri()
    opened = Opened(page)

    def route(r: Any) -> None:
        if r.request.url == uri:
            r.continue_()
        else:
            opened.blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("pageerror", lambda e: opened.errors.append(str(e)))
    page.on("console", lambda m: opened.errors.append(m.text) if m.type == "error" else None)
    t0 = time.perf_counter()
    page.goto(uri)
    page.wait_for_function("window.llmtraceReady !== undefined", timeout=30_000)
    opened.wall_s = time.perf_counter() - t0
    return opened
