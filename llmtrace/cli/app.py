"""The typer app every command registers on, its root options, and the options several commands share."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

import llmtrace.timespec as timespec
from llmtrace.model import VERSION
from llmtrace.cli.values import Typer

EXIT_CODES_HELP = (
    "Exit codes: the script's own code for `run` (1 for an uncaught exception, 130 for Ctrl-C, "
    "143 for SIGTERM); 2 bad arguments or unknown trace; 3 script missing, not Python or not compiling; "
    "4 trace store cannot be opened or written; 5 OTLP endpoint unreachable or refusing."
)

app = Typer(  # typer.Typer, converting plain option values without pydantic on typer ≥ 0.29: see cli_values
    help="Record what your LangChain agents did and what it cost, in one local SQLite file.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        print(f"llmtrace {VERSION}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Record what your LangChain agents did and what it cost, in one local SQLite file."""


JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]
SinceOpt = Annotated[Optional[str], typer.Option("--since", help=f"Start of the period: {timespec.HELP}.")]
UntilOpt = Annotated[Optional[str], typer.Option("--until", help="End of the period (same forms as --since).")]
