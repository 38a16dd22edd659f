"""The pytest plugin's front: loaded by pytest in every run of an environment where llmtrace is installed
(the `pytest11` entry point), so it only adds its options, its marker and its fixture, and imports
nothing of llmtrace until `--llmtrace` (or `--llmtrace-record`) asks for it (then llmtrace.testkit.suite
runs the session).

    pytest --llmtrace                          each test a trace; answers recorded once, then replayed
    pytest --llmtrace-record none              replay only: a request with no recorded answer fails its test
"""

from __future__ import annotations

from typing import Any

import pytest

MODES = ("once", "none", "new_episodes", "all")
_SUITE = "llmtrace-suite"


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("llmtrace", "llmtrace: each test a trace, LLM answers recorded once and replayed offline")
    group.addoption("--llmtrace", action="store_true", default=False,
                    help="Trace each test (named after its node id, tagged with its outcome, one run id for the session: "
                         "`llmtrace ls --run ID`) and answer its LLM calls from its recorded answers "
                         "(recorded_answers/<module>/<test>.json beside the tests).")
    group.addoption("--llmtrace-record", action="store", default=None, choices=MODES, metavar="MODE",
                    help="What a request with no recorded answer does (implies --llmtrace): once (default: record a test's "
                         "answers when it has none, else replay only), none (replay only: the test fails with the nearest "
                         "recorded request and a diff; nothing is sent), new_episodes (replay, record what is missing), "
                         "all (record every answer again). Also the ini option llmtrace_record.")
    parser.addini("llmtrace_record", "Default for --llmtrace-record (once, none, new_episodes, all).", default="once")


def pytest_configure(config: Any) -> None:
    config.addinivalue_line(
        "markers", "llmtrace(max_cost=None, max_calls=None, max_tokens=None): a budget for this test's LLM calls "
                   "(with pytest --llmtrace): the test fails when its calls cost, number or use more (replayed answers "
                   "count at their price).")
    if not (config.getoption("llmtrace") or config.getoption("llmtrace_record")):
        return
    mode = config.getoption("llmtrace_record") or config.getini("llmtrace_record") or "once"
    if mode not in MODES:
        raise pytest.UsageError(f"llmtrace_record = {mode!r}: use one of {', '.join(MODES)}")
    from llmtrace.testkit.suite import Suite

    config.pluginmanager.register(Suite(config, mode), _SUITE)
    if config.pluginmanager.hasplugin("xdist"):
        from llmtrace.testkit.suite import XdistHooks

        config.pluginmanager.register(XdistHooks(), "llmtrace-xdist")


@pytest.fixture
def llmtrace(request: Any) -> Any:
    """The test's trace as it is recorded: `.id`, `.llm_calls`, `.tokens`, `.cost`, `.replayed`, `.spans`
    (finished so far), `.calls` (its LLM and embedding spans). Needs `pytest --llmtrace`."""
    suite = request.config.pluginmanager.get_plugin(_SUITE)
    if suite is None or not suite.active:
        pytest.fail("the llmtrace fixture needs `pytest --llmtrace`", pytrace=False)
    return suite.handle(request.node)
