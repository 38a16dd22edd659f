"""The `llmtrace` command line: `main.py` builds the typer app from one module per command family;
`fast_run.py` reads `llmtrace run`'s common forms without typer. Nothing is imported here, so the fast
path pays for none of it."""
