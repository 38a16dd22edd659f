"""`llmtrace run`: a script run as `__main__`, exactly as python would run it, under a tracing session."""
