"""The app's own labels of an invocation — LangChain `metadata` and `tags`, LangGraph's `thread_id` —
as tags of the trace it is in (`ls --tag user_id=alice`, `cost --by tag:user_id`, `llmtrace thread`).

A trace of `run --split` is one invocation: its tags are that invocation's labels. A trace that holds
several (a script run as one trace, a notebook cell, a test) takes each label from the first
invocation that has it; a tag given on the command line (`run --tag`) stays as given."""

from __future__ import annotations

from typing import Any

# Keys LangChain and LangGraph put in a run's metadata for themselves (a graph's step, the model's
# provider, a checkpoint's namespace): not the app's labels.
_OWN_KEYS = ("ls_", "langgraph_", "checkpoint", "lc_", "__", "llmtrace")


def invocation_tags(root: Any) -> dict[str, str]:
    """The app's own labels of an invocation, as trace tags: LangChain `metadata` with plain values
    (`user_id`, and LangGraph's `thread_id`, which LangChain copies there from `configurable`) and its
    `tags` (each a tag of its own with an empty value: `ls --tag sync=`)."""
    tags = {str(t): "" for t in root.tags or [] if isinstance(t, str) and t and not t.startswith(("seq:", "graph:"))}
    for key, value in (root.metadata or {}).items():
        if isinstance(value, (str, int, float, bool)) and not str(key).startswith(_OWN_KEYS):
            tags[str(key)] = str(value)[:500]
    return tags


def add_labels(tags: dict[str, str], root: Any) -> None:
    """Give `tags` (a trace's) the labels of the top-level invocation `root` it has no value for yet."""
    for key, value in invocation_tags(root).items():
        tags.setdefault(key, value)
