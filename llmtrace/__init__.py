"""llmtrace: record what a LangChain agent did and what it cost, in one local SQLite file.

`llmtrace.trace()`, `enable()` and `disable()` (llmtrace/api.py) trace code from Python, and
`%load_ext llmtrace` traces notebook cells (llmtrace/notebook/); both are imported when first used,
so `import llmtrace` stays cheap and never imports LangChain.
"""

from __future__ import annotations

from typing import Any

from llmtrace.errors import BudgetExceeded, NoRecordedAnswer, ReplayDiverged

__all__ = ["BudgetExceeded", "NoRecordedAnswer", "ReplayDiverged", "TraceHandle", "__version__", "disable", "enable", "trace"]

_API = ("trace", "enable", "disable", "TraceHandle")


def __getattr__(name: str) -> Any:
    if name == "__version__":  # from model.py when asked: a child process of a traced run imports this package first
        from llmtrace.model import VERSION

        return VERSION
    if name in _API:
        from llmtrace import api

        return getattr(api, name)
    raise AttributeError(f"module 'llmtrace' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API, "__version__"})


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext llmtrace`: every notebook cell that calls an LLM or a tool becomes a trace."""
    from llmtrace.notebook import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """`%unload_ext llmtrace`: cells are no longer traced (the traces made stay in the store)."""
    from llmtrace.notebook import unload

    unload(ipython)
