"""`python -m llmtrace` entry point."""

from llmtrace.entry import main

if __name__ == "__main__":
    main()
