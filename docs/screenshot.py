"""Make docs/view-math-agent.png, the README's picture of `llmtrace view`: the reference math agent,
run offline against the scripted server, its page opened in headless Chromium with its second LLM
call selected.

    python docs/screenshot.py        # needs Chromium (apt-get install chromium) and playwright (pip install -e '.[test]')
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.browser import chromium, missing, open_file  # noqa: E402

OUT = ROOT / "docs" / "view-math-agent.png"


def main() -> None:
    why = missing()
    if why:
        sys.exit(f"screenshot: {why}")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "LLMTRACE_HOME": str(Path(tmp) / "home")}
        for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "LLMTRACE_TRACE_ID"):
            env.pop(var, None)
        llmtrace = [sys.executable, "-m", "llmtrace"]
        subprocess.run([*llmtrace, "run", "--mock", "-q", "sample_agents/math_agent.py"], env=env, cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        page_file = Path(tmp) / "math.html"
        subprocess.run([*llmtrace, "view", "last", "-o", str(page_file)], env=env, cwd=ROOT, check=True)
        with chromium() as browser:
            opened = open_file(browser, page_file, width=1600, height=820)
            opened.page.locator(".row[data-i]", has_text="LLM").nth(1).click()
            opened.page.screenshot(path=str(OUT))
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
