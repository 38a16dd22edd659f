"""The `llmtrace` command line (all but `run`'s fast path): the typer app with every command family on it.

Each family is a module of this package; a command parses its options, calls one function of the core (store
queries, the runner, exporters) and hands the result to a renderer. Heavy modules (LangChain, openai,
genai-prices) are imported only inside `run`.
"""

from __future__ import annotations

import sys

import typer

try:  # typer ≥ 0.26 vendors click
    from typer._click import exceptions as click_exc
except ImportError:  # pragma: no cover - typer < 0.26, on click (its own dependency)
    from click import exceptions as click_exc  # type: ignore[no-redef]

# Registered in this order, which `--help` keeps: run, replay, mock, ls, show, cost, diff, view, tag,
# feedback, rm, prune, export, import, cache.
from llmtrace.cli import browse, cache, edit, report, run, transfer  # noqa: F401  (each registers its commands)
from llmtrace.cli.app import app
from llmtrace.cli.common import guarded
from llmtrace.errors import ExitCode

__all__ = ["app", "main"]


def main() -> None:
    guarded(_main)


def _main() -> None:
    try:
        rv = app(standalone_mode=False)
    except click_exc.UsageError as e:
        hint = f" (see '{e.ctx.command_path} --help')" if e.ctx is not None else ""
        print(f"llmtrace: error: {e.format_message()}{hint}", file=sys.stderr)
        sys.exit(int(ExitCode.USAGE))
    except typer.Abort:  # typer ≥ 0.26's vendored click keeps Abort in typer.exceptions, not with the others
        sys.exit(int(ExitCode.INTERRUPTED))
    except click_exc.ClickException as e:
        print(f"llmtrace: error: {e.format_message()}", file=sys.stderr)
        sys.exit(e.exit_code)
    sys.exit(rv if isinstance(rv, int) else 0)
