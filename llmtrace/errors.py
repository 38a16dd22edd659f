"""Named exit codes and the one exception type that carries a user's mistake to the CLI."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    ERROR = 1  # the traced script failed, or an unexpected internal error
    USAGE = 2  # bad arguments, unknown trace id, malformed value
    SCRIPT = 3  # the script to run is missing, not a file, not Python, or does not compile
    STORE = 4  # the trace store cannot be opened or written
    EXPORT = 5  # the OTLP endpoint could not be reached or refused the spans
    INTERRUPTED = 130  # Ctrl-C
    TERMINATED = 143  # SIGTERM


class UserError(Exception):
    """A problem the user can fix; shown as one line on stderr, never as a traceback."""

    def __init__(self, message: str, code: ExitCode = ExitCode.USAGE):
        super().__init__(message)
        self.code = code
