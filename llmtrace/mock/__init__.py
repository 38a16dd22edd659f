"""The scripted LLM API server (stdlib only): `llmtrace mock` and the test fixture.

It speaks OpenAI Chat Completions, Responses and Embeddings, and Anthropic Messages, answering from
a reply script (see llmtrace.mock.script for its keys) with scripted faults. MockServer.base_url is
the OPENAI_BASE_URL to use; MockServer.anthropic_base_url the ANTHROPIC_BASE_URL.
"""

from llmtrace.mock.script import Script
from llmtrace.mock.server import MockServer

__all__ = ["MockServer", "Script"]
