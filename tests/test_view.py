"""`llmtrace view`: the HTML page, checked in a real browser (the system's headless Chromium driven by
Playwright): what it shows of the math agent, its panel, search, the all-spans toggle, that it asks
the network for nothing and shows hostile text as text; and the command's file handling."""

from __future__ import annotations

import json
import re
import stat
import sys

import pytest

from conftest import CACHE_KEY, ROOT, need_browser, run_cli, use_home

sys.path.insert(0, str(ROOT))
from bench import browser as chromium  # noqa: E402
from llmtrace.model import Span, Totals, Trace  # noqa: E402
from llmtrace.render.html import CLIP_CHARS, render_html  # noqa: E402
from llmtrace.render.tree import layout  # noqa: E402


@pytest.fixture(scope="module")
def browser():
    need_browser("the view tests need")
    with chromium.chromium() as b:
        yield b


def _data(html: str) -> dict:
    blob = re.search(r'<script type="application/json" id="llmtrace-data">(.*?)</script>', html, re.S).group(1)
    return json.loads(blob)


def _rows(page) -> list[str]:
    return page.locator(".row[data-i]").all_inner_texts()


def _math_page(math_runs, llmtrace_home, tmp_path):
    run = math_runs["math_agent.py"].cold
    use_home(run, llmtrace_home)
    out = tmp_path / "math.html"
    r = run_cli("view", "last", "-o", str(out))
    assert r.code == 0, r.stderr
    return run, out


def test_math_agent_page_in_a_browser(browser, math_runs, llmtrace_home, tmp_path):
    run, out = _math_page(math_runs, llmtrace_home, tmp_path)
    html = out.read_text()
    shown = [s for s, _, _ in layout(run.spans).walk() if s is not None]
    opened = chromium.open_file(browser, out)
    page = opened.page

    # The rows are `show`'s: the agent, its four LLM calls and three tool calls with their results.
    rows = _rows(page)
    assert len(rows) == len(shown) == 8
    assert rows[0].split()[:2] == ["chain", "AgentExecutor"]
    tools = [r for r in rows if r.startswith("tool")]
    assert [re.sub(r"\s+", " ", t).rsplit(" ", 1)[0] for t in tools] == [
        "tool exponentiate(base=3, exponent=5) → 243",
        "tool multiply(first_int=243, second_int=36) → 8748",
        "tool exponentiate(base=8748, exponent=2) → 76527504",
    ]
    assert sum(r.startswith("LLM gpt-4o-mini-2024-07-18") for r in rows) == 4
    assert page.inner_text("#card-cost").endswith("$0.000194")
    assert page.inner_text("#card-llm").endswith("4") and page.inner_text("#card-tools").endswith("3")
    assert "964 in / 82 out" in page.inner_text("#card-tokens")
    # Waterfall: a bar per row, streamed LLM calls show their time to first token.
    assert page.locator(".row[data-i] .bar").count() == 8
    assert page.locator(".row[data-i] .bar.llm.ttft").count() == 4

    # A tool call: its arguments and result.
    page.locator(".row[data-i]", has_text="tool multiply(first_int=243").click()
    panel = page.inner_text("#panel")
    assert "multiply" in panel and "ARGUMENTS" in panel.upper() and "first_int" in panel and "second_int" in panel
    assert "8748" in panel.split("RESULT" if "RESULT" in panel else "Result", 1)[1]
    assert page.locator(".row.sel").count() == 1

    # The first LLM call: model, tokens, cost, time to first token, attempts, messages, answer, raw JSON.
    page.locator(".row[data-i]", has_text="LLM").first.click()
    panel = page.inner_text("#panel")
    for text in ("gpt-4o-mini → gpt-4o-mini-2024-07-18", "174 in / 18 out", "$0.000037", "first token after",
                 "Attempts", "You are a helpful assistant", "Take 3 to the fifth power", "→ exponentiate(base=3, exponent=5)",
                 "Request, as sent", "Response, as received"):
        assert text in panel, (text, panel)
    raw = page.locator("#panel details", has_text="Request, as sent").locator("pre").text_content()
    first_llm = next(s for s in run.spans if s.kind == "llm")
    assert json.loads(raw) == first_llm.request  # the payload as the store holds it (already redacted)
    assert CACHE_KEY not in html and "Bearer" not in html

    # Every span, plumbing included, with the toggle; then back.
    page.check("#all")
    assert len(_rows(page)) == len(run.spans) == 32
    page.uncheck("#all")
    assert len(_rows(page)) == 8

    # Folding a node hides what is under it.
    page.locator(".row[data-i]").first.locator(".tw").click()
    assert len(_rows(page)) == 1
    page.click("#expand")
    assert len(_rows(page)) == 8

    # Search: the matching spans (with the steps above them), marked; Enter opens the first.
    page.fill("#q", "second_int")
    page.press("#q", "Enter")
    page.wait_for_selector(".row.hit")
    hits = page.locator(".row.hit").all_inner_texts()
    assert any(h.startswith("tool multiply(") for h in hits)
    assert not any(h.startswith("tool exponentiate(") for h in _rows(page))  # neither a match nor above one
    assert page.locator(".row.ctx").all_inner_texts()[0].startswith("chain AgentExecutor")  # the step above them
    assert re.match(r"4 matches · 12 more in LangChain plumbing", page.inner_text("#qcount"))
    assert "second_int" in page.inner_text("#panel")  # Enter opened the first match
    page.fill("#q", "")
    page.press("#q", "Escape")
    page.wait_for_function("document.querySelectorAll('.row.hit').length === 0")
    assert len(_rows(page)) == 8

    page.screenshot(path=str(tmp_path / "view-math-agent.png"))
    assert (tmp_path / "view-math-agent.png").stat().st_size > 10_000
    assert opened.blocked == [] and opened.errors == []


def _hostile_trace():
    t0 = 1_700_000_000_000_000
    evil = '</script><script>window.pwned=1</script><img src=x onerror="window.pwned=2">'
    spans = [
        Span(id="a0000000-0000-7000-8000-000000000001", trace_id="t", parent_id=None, kind="chain", name="Agent",
             start_us=t0, end_us=t0 + 50_000, status="ok", inputs={"input": evil}, outputs={"output": evil}),
        Span(id="a0000000-0000-7000-8000-000000000002", trace_id="t", parent_id="a0000000-0000-7000-8000-000000000001",
             kind="tool", name="search", start_us=t0 + 1000, end_us=t0 + 9000, status="error", inputs={"q": evil},
             error_type="ValueError", error_message=evil, metadata={"traceback": "Traceback …\nValueError: " + evil}),
        Span(id="a0000000-0000-7000-8000-000000000003", trace_id="t", parent_id="a0000000-0000-7000-8000-000000000001",
             kind="llm", name="ChatOpenAI", start_us=t0 + 10_000, end_us=t0 + 40_000, status="ok", model=evil,
             inputs={"messages": [{"role": "human", "content": evil}]}, outputs={"content": evil}, cost=None,
             request={"messages": [{"role": "user", "content": evil}], "huge": "y" * (CLIP_CHARS + 5000)},
             response={"chunks": list(range(2000))}, cache_hit="exact", cost_saved=0.001),
    ]
    trace = Trace(id="0d2f7a9c-0000-4000-8000-000000000000", name=evil, start_us=t0, end_us=t0 + 60_000,
                  status="error", error=evil, tags={"k": evil}, totals=Totals(llm_calls=1, tool_calls=1, errors=1))
    return trace, spans, evil


def test_hostile_text_shows_as_text(browser, tmp_path):
    trace, spans, evil = _hostile_trace()
    html = render_html(trace, spans)
    assert evil not in html and "<img" not in html  # escaped everywhere
    assert html.count("<script") == html.count("</script>") == 2  # the data's and the page script's, nothing else
    data = _data(html)
    assert data["trace"]["name"] == evil and data["spans"][1]["em"] == evil  # the JSON still holds the text whole
    out = tmp_path / "hostile.html"
    out.write_text(html)
    opened = chromium.open_file(browser, out)
    page = opened.page
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    assert page.evaluate("window.pwned") is None
    assert page.inner_text("#name") == evil and evil in page.inner_text("#error")
    page.locator(".row[data-i]", has_text="search(").click()
    assert evil in page.inner_text("#panel")
    page.locator(".row[data-i]", has_text="LLM").click()
    panel = page.inner_text("#panel")
    assert evil in panel and "clipped" in panel and "$0 (saved $0.001000)" in panel
    page.locator("#panel summary", has_text="Request").click()
    raw = page.locator("#panel details", has_text="Request").locator("pre").text_content()
    assert "more characters clipped" in raw and "more items clipped" in page.locator("#panel details", has_text="Response").locator("pre").text_content()
    assert page.evaluate("window.pwned") is None and dialogs == []
    assert page.locator("img").count() == 0 and page.locator("#panel script, #rows script").count() == 0
    assert opened.blocked == [] and opened.errors == []


def test_empty_and_running_traces_open(browser, tmp_path):
    t0 = 1_700_000_000_000_000
    empty = Trace(id="0d2f7a9c-0000-4000-8000-00000000000e", name="empty.py", start_us=t0, end_us=t0 + 10, status="ok")
    running = Trace(id="0d2f7a9c-0000-4000-8000-00000000000f", name="busy.py", start_us=t0, status="running")
    open_span = Span(id="b0000000-0000-7000-8000-000000000001", trace_id=running.id, parent_id="gone", kind="llm",
                     name="ChatOpenAI", start_us=t0 + 5, model_requested="gpt-4o-mini")
    for trace, spans, rows in ((empty, [], 0), (running, [open_span], 1)):
        out = tmp_path / f"{trace.name}.html"
        out.write_text(render_html(trace, spans))
        opened = chromium.open_file(browser, out)
        assert len(_rows(opened.page)) == rows and opened.errors == [] and opened.blocked == []
        assert trace.name in opened.page.inner_text("#name")


def test_page_is_self_contained_and_strict():
    trace, spans, _ = _hostile_trace()
    html = render_html(trace, spans)
    assert not re.search(r"<[^>]*\s(src|href)=", html)  # no element that fetches anything
    assert "http://" not in html and "https://" not in html.replace("https://no-color.org", "")
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1)
    assert "default-src 'none'" in csp and "script-src 'sha256-" in csp and "connect-src" not in csp
    import base64
    import hashlib

    script = re.search(r"<script>(.*?)</script>", html, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in csp  # the one script the page may run is its own


def test_default_rows_are_shows_and_every_span_is_in_the_file(math_runs):
    run = math_runs["math_agent.py"].cold
    data = _data(render_html(run.trace, run.spans))
    assert len(data["spans"]) == len(run.spans)
    shown = [s for s in data["spans"] if not s.get("h")]
    assert [s["nm"] for s in shown] == [s.name for s in sorted(
        (s for s, _, _ in layout(run.spans).walk() if s is not None), key=lambda s: (s.start_us, s.id))]
    assert all(s["k"] != "chain" or s["nm"] == "AgentExecutor" for s in shown)
    # Parents in the default tree skip the folded plumbing: every tool and LLM call sits under the agent.
    root = next(i for i, s in enumerate(data["spans"]) if s["nm"] == "AgentExecutor")
    assert all(s.get("p") == root for s in shown if s["k"] in ("llm", "tool"))


def test_view_command_files_and_errors(math_runs, llmtrace_home, tmp_path, monkeypatch):
    use_home(math_runs["math_agent.py"].cold, llmtrace_home)
    short = math_runs["math_agent.py"].cold.trace.id[:8]
    r = run_cli("view", cwd=tmp_path)
    out = tmp_path / f"llmtrace-{short}.html"
    assert r.code == 0 and f"llmtrace-{short}.html" in r.stderr and r.stdout == ""
    assert stat.S_IMODE(out.stat().st_mode) == 0o600 and out.read_text().startswith("<!DOCTYPE html>")
    piped = run_cli("view", short, "-o", "-")
    assert piped.code == 0 and piped.stdout == out.read_text()
    bad = run_cli("view", "ffffffff")
    assert bad.code == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    assert run_cli("view", "-o", "-", "--open").code == 2

    # --open: through the browser the environment names, else a note (and success).
    seen = tmp_path / "opened.txt"
    fake = tmp_path / "fake-browser"
    fake.write_text(f"#!/bin/sh\necho \"$1\" > {seen}\n")
    fake.chmod(0o755)
    r = run_cli("view", "-o", str(tmp_path / "a.html"), "--open", env={"BROWSER": f"{fake} %s"})
    assert r.code == 0 and seen.read_text().strip() == (tmp_path / "a.html").as_uri()
    for var in ("BROWSER", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(var, raising=False)
    r = run_cli("view", "-o", str(tmp_path / "b.html"), "--open")
    assert r.code == 0 and "no web browser" in r.stderr and (tmp_path / "b.html").exists()


def test_long_run_keeps_first_and_last_steps(tmp_path, monkeypatch):
    from bench.gen_store import generate_steps

    tid = generate_steps(tmp_path, 30)
    monkeypatch.setenv("LLMTRACE_HOME", str(tmp_path))
    folded = _data(run_cli("view", tid[:8], "-o", "-").stdout)
    assert folded["hidden"] == 10 and len(folded["spans"]) == 20 * 10
    assert folded["spans"][folded["head"]]["n"] == 21  # the last steps keep their numbers
    assert all(s.get("rq") for s in folded["spans"] if s["k"] == "llm")  # with their payloads
    whole = _data(run_cli("view", tid[:8], "--all", "-o", "-").stdout)
    assert whole["hidden"] == 0 and len(whole["spans"]) == 300
