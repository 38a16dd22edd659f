"""The `llmtrace` command: `run` in its common forms straight to its work (no typer: start-up is
added to the user's program), everything else to the typer app (`llmtrace.cli`)."""

from __future__ import annotations

import sys


def main() -> None:
    argv = sys.argv[1:]
    if argv[:1] == ["run"]:
        from llmtrace import cli_run

        kwargs = cli_run.plain_run_args(argv[1:])
        if kwargs is not None:
            cli_run.guarded(lambda: cli_run.start_run(**kwargs))
            sys.exit(0)  # pragma: no cover - start_run always exits
    from llmtrace.cli import main as typer_main

    typer_main()


if __name__ == "__main__":
    main()
