"""llmtrace: record what a LangChain agent did and what it cost, in one local SQLite file."""

__version__ = "0.1.0"
