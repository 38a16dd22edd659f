"""Named exit codes and the one exception type that carries a user's mistake to the CLI."""

from __future__ import annotations

import sys


class ExitCode:
    """The exit statuses, as plain ints (an IntEnum class costs every run's start ~1 M instructions)."""

    __slots__ = ()
    OK = 0
    ERROR = 1  # the traced script failed, or an unexpected internal error
    USAGE = 2  # bad arguments, unknown trace id, malformed value
    SCRIPT = 3  # the script to run is missing, not a file, not Python, or does not compile
    STORE = 4  # the trace store cannot be opened or written
    EXPORT = 5  # the OTLP endpoint could not be reached or refused the spans
    INTERRUPTED = 130  # Ctrl-C
    TERMINATED = 143  # SIGTERM


_warned: set[str] = set()


def warn_once(key: str, message: str) -> None:
    """`llmtrace: warning: MESSAGE` on stderr, the first time KEY is warned about in this process: trouble that
    recurs (a full disk, a damaged cache) is said once, and the script runs on."""
    if key not in _warned:
        _warned.add(key)
        print(f"llmtrace: warning: {message}", file=sys.stderr)


class UserError(Exception):
    """A problem the user can fix; shown as one line on stderr, never as a traceback."""

    def __init__(self, message: str, code: int = ExitCode.USAGE):
        super().__init__(message)
        self.code = code


class BudgetExceeded(RuntimeError):
    """Raised at the call site inside a script run with `llmtrace run --max-cost/--max-calls/--max-tokens`
    once the run has spent its budget: the LLM call was not sent. `from llmtrace import BudgetExceeded`."""


class ReplayDiverged(RuntimeError):
    """Raised at the call site by `llmtrace replay` when the script makes a request the recording does
    not hold (the first one that differs): nothing was sent. `from llmtrace import ReplayDiverged`."""


class NoRecordedAnswer(ReplayDiverged):
    """Raised at the call site where nothing may be sent and no recorded answer fits the request
    (`llmtrace run --offline`, `pytest --llmtrace-record none`): nothing was sent. The message holds
    the nearest recorded request and a diff of the two. `from llmtrace import NoRecordedAnswer`."""
