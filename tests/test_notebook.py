"""Notebooks: `%load_ext llmtrace` in a real IPython kernel (ipykernel driven by nbclient) against the
scripted server, the rendered cell output in headless Chromium, and `llmtrace run NOTEBOOK.ipynb`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, need_browser, run_cli, server_env, store

sys.path.insert(0, str(ROOT))

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ASK = "client.chat.completions.create(model='gpt-4o-mini', messages=[{{'role': 'user', 'content': {q!r}}}])"
SETUP = "import openai\nclient = openai.OpenAI()"


@pytest.fixture(scope="session", autouse=True)
def kernelspec():
    """A python3 kernelspec in this virtualenv (its python, with llmtrace), never assumed to exist."""
    from jupyter_client.kernelspec import KernelSpecManager

    specs = KernelSpecManager().find_kernel_specs()
    if not specs.get("python3", "").startswith(sys.prefix):
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix"], check=True, capture_output=True)


def notebook(*cells: str):
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])


def ask(q: str) -> str:
    return ASK.format(q=q)


def kernel_env(monkeypatch, server, name: str = "analysis.ipynb") -> None:
    for key, value in server_env(server).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("JPY_SESSION_NAME", f"/work/{name}")  # what JupyterLab tells the kernel


def execute(nb, between=None):
    """Run every cell in one fresh kernel; `between(i)` is called after cell i while the kernel lives."""
    client = nbclient.NotebookClient(nb, kernel_name="python3", allow_errors=True, timeout=300)
    with client.setup_kernel():
        for i, cell in enumerate(nb.cells):
            client.execute_cell(cell, i)
            if between is not None:
                between(i)
    return nb


def bundles(cell) -> list[dict]:
    return [o.data for o in cell.outputs if o.output_type == "display_data" and "llmtrace" in o.data.get("text/html", "")]


def traces(home) -> list[tuple]:
    db = store(home)
    try:
        return db.execute("SELECT id, name, status, llm_calls, cache_hits, error, traceback FROM traces "
                          "ORDER BY start_us").fetchall()
    finally:
        db.close()


CELLS = ("%load_ext llmtrace", "total = sum(range(10))\ntotal", SETUP + "\n" + ask("one"),
         "for q in ('two', 'three'):\n    " + ask("q").replace("'q'", "q"), "print('no call here')")


def test_each_calling_cell_is_a_trace_seen_while_the_kernel_lives_and_replayed_in_a_fresh_kernel(
        llmtrace_home, mock_server, monkeypatch):
    server = mock_server()
    kernel_env(monkeypatch, server)
    seen: dict[int, list] = {}

    def look(i: int) -> None:
        if i == 3:  # after the two calling cells, from a terminal, the kernel still running
            r = run_cli("ls", "--json")
            assert r.code == 0, r.stderr
            seen[i] = json.loads(r.stdout)

    nb = execute(notebook(*CELLS), look)
    assert server.stats.requests == 3
    names = [t["name"] for t in seen[3]]
    assert sorted(names) == ["analysis.ipynb · cell 3", "analysis.ipynb · cell 4"]
    rows = traces(llmtrace_home)
    assert [(name, status, calls) for _, name, status, calls, *_ in rows] == [
        ("analysis.ipynb · cell 3", "ok", 1), ("analysis.ipynb · cell 4", "ok", 2)]  # cells 1, 2, 5: no trace

    # The display, under each calling cell only: the show tree as text and as HTML.
    assert [len(bundles(c)) for c in nb.cells] == [0, 0, 1, 1, 0]
    two = bundles(nb.cells[3])[0]
    plain = two["text/plain"]
    assert plain.splitlines()[0].startswith("analysis.ipynb · cell 4 ")
    assert "2 LLM calls" in plain and plain.count("── LLM gpt-4o-mini") == 2
    assert "You said: three" in plain and "You said: three" in two["text/html"]
    assert 'srcdoc="' in two["text/html"] and 'sandbox="allow-scripts"' in two["text/html"]  # the full view, inline
    assert nb.cells[1].outputs[0].data["text/plain"] == "45"  # the cell's own output is untouched

    # The same notebook in a fresh kernel: every answer comes from the cache.
    server.stats.reset()
    nb2 = execute(notebook(*CELLS))
    assert server.stats.requests == 0
    again = traces(llmtrace_home)[2:]
    assert [(calls, hits) for _, _, _, calls, hits, *_ in again] == [(1, 1), (2, 2)]
    assert "You said: three" in bundles(nb2.cells[3])[0]["text/plain"]


def test_a_failing_cell_is_an_error_trace_and_unload_stops_tracing(llmtrace_home, mock_server, monkeypatch):
    server = mock_server()
    kernel_env(monkeypatch, server, "fails.ipynb")
    nb = execute(notebook(
        "%load_ext llmtrace", SETUP + "\n" + ask("before the error") + "\nraise ValueError('the cell failed')",
        "%llmtrace quiet", ask("quietly"),
        "%%llmtrace --name chosen --tag step=2\n" + ask("magic"),
        "%unload_ext llmtrace", ask("untraced"),
    ))
    errors = [o for o in nb.cells[1].outputs if o.output_type == "error"]
    assert errors and errors[0].ename == "ValueError"  # the cell fails as it would untraced
    assert len(bundles(nb.cells[1])) == 1 and not bundles(nb.cells[3])  # quiet: traced, not shown
    assert len(bundles(nb.cells[4])) == 1 and not bundles(nb.cells[6])
    rows = traces(llmtrace_home)
    assert [(name, status, calls) for _, name, status, calls, *_ in rows] == [
        ("fails.ipynb · cell 2", "error", 1), ("fails.ipynb · cell 4", "ok", 1), ("chosen", "ok", 1)]
    _, _, _, _, _, error, stack = rows[0]
    assert error == "ValueError: the cell failed"
    assert "raise ValueError('the cell failed')" in stack and "interactiveshell.py" not in stack
    assert server.stats.requests == 4  # the call after %unload_ext was sent, and left no trace


def test_rendered_cell_output_in_chromium_shows_the_tree_and_runs_no_script_from_the_trace(
        llmtrace_home, mock_server, monkeypatch, tmp_path):
    need_browser("the notebook display test needs")
    from nbconvert import HTMLExporter

    from bench import browser as chromium

    hostile = "<script>window.pwned = 1</script><img src=x onerror=\"window.pwned = 2\">"
    server = mock_server({"replies": [{"content": hostile}]})
    kernel_env(monkeypatch, server, "hostile.ipynb")
    nb = execute(notebook("%load_ext llmtrace", SETUP + "\n" + ask("hello") + ".choices[0].message.content[:6]"))
    assert len(bundles(nb.cells[1])) == 1
    body, _ = HTMLExporter().from_notebook_node(nb)
    page_file = tmp_path / "executed.html"
    page_file.write_text(body)
    with chromium.chromium() as browser:
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        uri = page_file.resolve().as_uri()
        page.route("**/*", lambda r: r.continue_() if r.request.url == uri else r.abort())
        page.goto(uri)
        tree = page.locator(".llmtrace-tree")
        assert tree.count() == 1 and tree.is_visible()
        text = tree.inner_text()
        assert text.splitlines()[0].startswith("hostile.ipynb · cell 2")
        assert "LLM gpt-4o-mini" in text and "<script>window.pwned" in text  # the reply, shown as text
        page.locator(".llmtrace-details summary").click()  # the full view, inline
        frame = page.frame_locator("iframe.llmtrace-view")
        frame.locator(".row[data-i]").first.wait_for(timeout=30_000)
        assert "LLM gpt-4o-mini" in frame.locator(".row[data-i]").first.inner_text()
        for f in page.frames:
            assert f.evaluate("typeof window.pwned") == "undefined"


def test_llmtrace_run_executes_a_notebook_one_trace_or_one_per_cell(llmtrace_home, mock_server, tmp_path):
    server = mock_server()
    path = tmp_path / "report.ipynb"
    nbformat.write(notebook(SETUP + "\n" + ask("one"), "x = 1", "for q in 'ab':\n    " + ask("q").replace("'q'", "q")), path)
    out = tmp_path / "out.ipynb"
    r = run_cli("run", "--output", str(out), str(path), env=server_env(server))
    assert r.code == 0, r.stderr
    assert "llmtrace: trace" in r.stderr and "3 LLM calls" in r.stderr
    rows = traces(llmtrace_home)
    assert [(name, status, calls) for _, name, status, calls, *_ in rows] == [("report.ipynb", "ok", 3)]
    executed = nbformat.read(str(out), as_version=4)
    assert executed.cells[0].execution_count == 1 and oct(os.stat(out).st_mode & 0o777) == "0o600"

    r = run_cli("run", "--split", "--no-cache", str(path), env=server_env(server))
    assert r.code == 0, r.stderr
    assert "split into 2 traces" in r.stderr
    parts = traces(llmtrace_home)[1:]
    assert sorted((name, calls) for _, name, _, calls, *_ in parts if calls) == [
        ("report.ipynb · cell 1", 1), ("report.ipynb · cell 3", 2)]


def test_llmtrace_run_a_failing_notebook_exits_1_with_the_cells_traceback(llmtrace_home, mock_server, tmp_path):
    server = mock_server()
    path = tmp_path / "broken.ipynb"
    nbformat.write(notebook(SETUP + "\n" + ask("one"), "raise KeyError('missing')", "print('never runs')"), path)
    r = run_cli("run", str(path), env=server_env(server))
    assert r.code == 1
    assert "KeyError" in r.stderr and "raise KeyError('missing')" in r.stderr  # the cell, as nbclient reports it
    assert "error (exit 1)" in r.stderr
    (_, name, status, calls, _, error, stack), = traces(llmtrace_home)
    assert (name, status, calls) == ("broken.ipynb", "error", 1)
    assert error.startswith("KeyError") and "raise KeyError('missing')" in stack
    assert server.stats.requests == 1

    r = run_cli("run", str(tmp_path / "absent.ipynb"))
    assert r.code != 0 and r.stderr.strip().count("\n") == 0 and "no such notebook" in r.stderr


def test_jupyters_own_entry_point_under_llmtrace_run_ends_with_a_trace_and_summary(llmtrace_home, mock_server, tmp_path):
    """`jupyter nbconvert` exec's `jupyter-nbconvert`: the run starts it as a child instead, which joins
    the trace (and so does the kernel it starts), and ends with its status."""
    server = mock_server()
    path = tmp_path / "report.ipynb"
    nbformat.write(notebook(SETUP + "\n" + ask("one"), ask("two")), path)
    jupyter = os.path.join(os.path.dirname(sys.executable), "jupyter")
    r = run_cli("run", jupyter, "nbconvert", "--to", "notebook", "--execute", str(path), "--output",
                str(tmp_path / "done.ipynb"), env=server_env(server))
    assert r.code == 0, r.stderr
    assert "llmtrace: trace" in r.stderr and "2 LLM calls" in r.stderr and "killed" not in r.stderr
    assert [(status, calls) for _, _, status, calls, *_ in traces(llmtrace_home)] == [("ok", 2)]
    assert (tmp_path / "done.ipynb").exists()


def test_a_script_that_execs_python_keeps_its_trace_and_exit_status(llmtrace_home, mock_server, tmp_path):
    server = mock_server()
    script = tmp_path / "execs.py"
    script.write_text(
        "import os, sys\n"
        "child = 'import openai, sys; openai.OpenAI().chat.completions.create(model=\"gpt-4o-mini\", "
        "messages=[{\"role\": \"user\", \"content\": \"after exec\"}]); print(\"exec ran\"); sys.exit(3)'\n"
        "print('before exec', flush=True)\n"
        "try:\n    os.execv(sys.executable, [sys.executable, '-c', child])\n"
        "finally:\n    print('a finally block after an exec never runs')\n")
    r = run_cli("run", str(script), env=server_env(server))
    assert r.code == 3
    assert r.stdout.splitlines() == ["before exec", "exec ran"]
    assert [(status, calls) for _, _, status, calls, *_ in traces(llmtrace_home)] == [("error", 1)]
