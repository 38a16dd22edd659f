"""Make docs/notebook-cell.png, the README's picture of a traced notebook cell: JupyterLab (a real
server and kernel) opened in headless Chromium, a notebook that loads the extension and runs the
reference math agent against the scripted server, the trace under the cell.

    pip install jupyterlab && python docs/notebook_screenshot.py   # and Chromium, playwright ('.[test]')
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.browser import chromium, missing  # noqa: E402

OUT = ROOT / "docs" / "notebook-cell.png"
OUT_VIEW = ROOT / "docs" / "notebook-view.png"  # the same cell with its full view opened inline
TOKEN = "llmtrace-screenshot"
AGENT = '''from langchain_classic.agents import AgentExecutor, create_openai_tools_agent
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

@tool
def multiply(first_int: int, second_int: int) -> int:
    """Multiply two integers together."""
    return first_int * second_int

@tool
def exponentiate(base: int, exponent: int) -> int:
    """Exponentiate the base to the exponent power."""
    return base**exponent

prompt = ChatPromptTemplate.from_messages([("system", "You are a helpful assistant"), ("human", "{input}"),
                                           MessagesPlaceholder("agent_scratchpad")])
llm = ChatOpenAI(model="gpt-4o-mini", temperature=0)
agent = AgentExecutor(agent=create_openai_tools_agent(llm, [multiply, exponentiate], prompt),
                      tools=[multiply, exponentiate])
agent.invoke({"input": "Take 3 to the fifth power and multiply that by thirty six, then square the result"})["output"]'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    why = missing()
    if why:
        sys.exit(f"screenshot: {why}")
    import nbformat

    from llmtrace.mock import MockServer, Script

    server = MockServer(Script.load(ROOT / "sample_agents" / "math_agent.mock.json")).start()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "work"
        work.mkdir()
        cells = ["%load_ext llmtrace", AGENT]
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]),
                       str(work / "math_agent.ipynb"))
        env = {**os.environ, "LLMTRACE_HOME": str(Path(tmp) / "home"), "OPENAI_BASE_URL": server.base_url,
               "OPENAI_API_KEY": "llmtrace-mock-key", "JUPYTER_CONFIG_DIR": str(Path(tmp) / "jupyter-config"),
               "JUPYTER_RUNTIME_DIR": str(Path(tmp) / "jupyter-runtime")}
        port = _free_port()
        lab = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1", "--allow-root",
             f"--ServerApp.token={TOKEN}", f"--ServerApp.root_dir={work}",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            with chromium() as browser:
                page = browser.new_page(viewport={"width": 1500, "height": 1000})
                deadline = time.time() + 120
                while True:  # the server takes a moment to listen
                    try:
                        page.goto(f"http://127.0.0.1:{port}/lab/tree/math_agent.ipynb?token={TOKEN}")
                        break
                    except Exception:
                        if time.time() > deadline:
                            raise
                        time.sleep(0.5)
                page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
                page.wait_for_timeout(2000)
                for _ in range(3):  # "select a kernel" (Python 3 is offered): accept it
                    dialog = page.locator(".jp-Dialog .jp-mod-accept")
                    if dialog.count():
                        dialog.first.click()
                        page.wait_for_timeout(500)
                page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
                page.locator(".jp-Cell .jp-InputArea-editor").first.click()
                page.keyboard.press("Shift+Enter")
                page.keyboard.press("Shift+Enter")
                page.wait_for_selector(".jp-OutputArea-output .llmtrace-tree", timeout=180_000)
                news = page.get_by_role("button", name="No", exact=True)  # JupyterLab's "get news?" toast
                if news.count():
                    news.first.click()
                page.locator(".jp-Notebook").evaluate("n => n.scrollTop = 0")
                page.wait_for_timeout(500)  # let the output settle (fonts) before the picture
                page.screenshot(path=str(OUT))
                page.locator(".llmtrace-details summary").click()
                frame = page.frame_locator("iframe.llmtrace-view")
                frame.locator(".row[data-i]", has_text="LLM").nth(1).click()
                page.locator("iframe.llmtrace-view").scroll_into_view_if_needed()
                page.wait_for_timeout(500)
                page.screenshot(path=str(OUT_VIEW))
        finally:
            lab.terminate()
            lab.wait(30)
            server.stop()
    print(f"wrote {OUT.relative_to(ROOT)} and {OUT_VIEW.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
