"""llmtrace: record what a LangChain agent did and what it cost, in one local SQLite file."""

from llmtrace.errors import BudgetExceeded, ReplayDiverged

__version__ = "0.1.0"
__all__ = ["BudgetExceeded", "ReplayDiverged", "__version__"]
