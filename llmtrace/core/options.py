"""What a run was asked to do (`llmtrace run` options), and the capture settings made from it.

Shared by the runner and by child processes, which rebuild the same settings from the parent's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RunOptions:
    """What `llmtrace run` was asked to do: the script, its arguments, and the run's options."""

    script: str  # as the user typed it: it becomes sys.argv[0]
    args: list[str] = field(default_factory=list)
    trace_id: str | None = None
    name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    cache: bool = True
    cache_dir: Path | None = None
    cache_ttl_s: float | None = None
    cache_size_mb: int = 1024
    semantic_cache: bool = False
    semantic_threshold: float = 0.95
    embedding_model: str = "text-embedding-3-small"
    retries: int = 4
    cache_mode: str = "replay"  # or "reuse": answer identical requests from the cache within a run too
    children: bool = True  # child processes join the trace
    mock_url: str | None = None  # the --mock server's base URL: cache keys name it "llmtrace-mock"
    otlp_url: str | None = None  # stream spans live to this OTLP/HTTP endpoint too
    otlp_headers: dict[str, str] = field(default_factory=dict)  # sent with every OTLP request
    split: bool = False  # one trace per top-level invocation, sharing this run's id
    max_cost: float | None = None  # budgets: the next LLM call past one of them is refused (BudgetExceeded)
    max_calls: int | None = None
    max_tokens: int | None = None
    replay: Any = None  # capture.replay.ReplaySource: answer LLM calls from a recorded trace (cache off)
    offline: bool = False  # answer every call from the cache; a miss fails at its call site, unsent


def _mock_aliases(mock_url: str | None) -> dict[str, str]:
    """The --mock server's URLs (openai: …/v1, anthropic: its root) under stable names for cache keys."""
    if not mock_url:
        return {}
    url = mock_url.rstrip("/")
    return {url: "llmtrace-mock", url.removesuffix("/v1"): "llmtrace-mock-root"}


def wire_settings(opts: RunOptions, quiet: bool = False) -> Any:
    from llmtrace.store.cache import CacheSettings, open_cache
    from llmtrace.capture.retry import RetryPolicy
    from llmtrace.capture.context import WireSettings
    from llmtrace.home import home

    cs = CacheSettings(
        enabled=opts.cache, directory=opts.cache_dir or home() / "cache", ttl_s=opts.cache_ttl_s,
        size_limit_bytes=opts.cache_size_mb << 20, threshold=opts.semantic_threshold,
        embedding_model=opts.embedding_model,
    )
    cache = open_cache(cs, quiet=quiet) if opts.replay is None else None
    budget = None
    if (opts.max_cost, opts.max_calls, opts.max_tokens) != (None, None, None):
        from llmtrace.capture.budget import Budget, Limits

        budget = Budget(Limits(opts.max_cost, opts.max_calls, opts.max_tokens))
    return WireSettings(
        cache=cache, retry=RetryPolicy.from_env(opts.retries), semantic=cs if (opts.semantic_cache and cache) else None,
        url_aliases=_mock_aliases(opts.mock_url), cache_mode=opts.cache_mode, budget=budget, replay=opts.replay,
        offline=opts.offline and opts.replay is None,
    )
