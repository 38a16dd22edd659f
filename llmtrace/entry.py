"""The `llmtrace` command: `run` in its common forms straight to its work (no typer: start-up is
added to the user's program), everything else to the typer app (`llmtrace.cli.main`)."""

from __future__ import annotations

import sys


def main() -> None:
    argv = sys.argv[1:]
    if argv[:1] == ["run"]:
        from llmtrace.cli.fast_run import plain_run_args

        kwargs = plain_run_args(argv[1:])
        if kwargs is not None:
            from llmtrace.cli.common import guarded
            from llmtrace.cli.launch import start_run

            guarded(lambda: start_run(**kwargs))
            sys.exit(0)  # pragma: no cover - start_run always exits
    from llmtrace.cli.main import main as typer_main

    typer_main()


if __name__ == "__main__":
    main()
