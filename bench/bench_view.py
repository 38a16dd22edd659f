"""`llmtrace view` of a 5,000-span trace: the HTML file's size, the time to write it, and the time
headless Chromium takes to open it, parse its data, draw it and lay it out; then a search across
its spans and the all-spans toggle.

The trace is bench_scale's big one (gen_store: an agent with 2,000 LLM calls, 2,000 tool calls and
1,000 RunnableSequences, payloads included). Writing is timed as a fresh process 3 times; opening
in a fresh page 5 times (one browser): medians. "Laid out" is the page's own clock
(`performance.now()`, from navigation start) once its script has drawn the rows and forced a
layout; the wall time from `goto` to that moment, seen from Playwright, is reported beside it.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.browser import chromium, missing, open_file  # noqa: E402
from bench.common import llmtrace, median, run  # noqa: E402
from bench.gen_store import generate  # noqa: E402

SEARCH = """() => {
  const q = document.getElementById("q"), t = performance.now();
  q.value = "multiply";
  q.dispatchEvent(new KeyboardEvent("keydown", {key: "Enter"}));
  return [performance.now() - t, parseInt(document.getElementById("qcount").textContent.replace(/,/g, ""), 10)];
}"""
TOGGLE = """() => {
  const box = document.getElementById("all"), t = performance.now();
  box.click();
  void document.body.offsetHeight;
  return performance.now() - t;
}"""


def measure(quick: bool = False, directory: Path | None = None) -> dict[str, float]:
    directory = directory or Path(tempfile.mkdtemp())
    spans = 300 if quick else 5000
    big_id = generate(directory, traces=10, spans=100, big=spans)
    env = {"LLMTRACE_HOME": str(directory)}
    page_file = directory / "view.html"
    cmd = llmtrace("view", big_id[:8], "-o", str(page_file))
    out: dict[str, float] = {"spans": spans}
    out["write_s"] = median([run(cmd, env) for _ in range(1 if quick else 3)])
    out["html_bytes"] = page_file.stat().st_size
    out["html_mb"] = out["html_bytes"] / 1e6
    why = missing()
    if why:
        print(f"bench_view: no browser timings ({why})", file=sys.stderr)
        return {**out, "load_s": float("nan"), "load_wall_s": float("nan"), "search_ms": float("nan"), "toggle_all_ms": float("nan")}
    loads, walls = [], []
    with chromium() as browser:
        for i in range(1 if quick else 5):
            opened = open_file(browser, page_file)
            if opened.errors or opened.blocked:
                raise RuntimeError(f"the page failed: {opened.errors or opened.blocked}")
            loads.append(opened.page.evaluate("window.llmtraceReady") / 1000)
            walls.append(opened.wall_s)
            if i == 0:
                out["search_ms"], hits = opened.page.evaluate(SEARCH)
                out["search_hits"] = hits
                opened.page.evaluate("() => { const q = document.getElementById('q'); q.value = ''; "
                                     "q.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape'})); }")
                out["toggle_all_ms"] = opened.page.evaluate(TOGGLE)
            opened.page.close()
    out["load_s"], out["load_wall_s"] = median(loads), median(walls)
    return out


if __name__ == "__main__":
    for k, v in measure("--quick" in sys.argv).items():
        print(f"{k:26s} {v:12.3f}")
