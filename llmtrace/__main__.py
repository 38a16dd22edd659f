"""`python -m llmtrace` entry point."""

from llmtrace.cli import main

if __name__ == "__main__":
    main()
