"""The scripted OpenAI-compatible server (stdlib only): `llmtrace mock` and the test fixture."""

from llmtrace.mock.script import Script
from llmtrace.mock.server import MockServer

__all__ = ["MockServer", "Script"]
