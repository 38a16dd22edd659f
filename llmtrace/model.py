"""Plain data objects shared by capture, store and render: traces, spans and their states."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

# llmtrace's own version (also `llmtrace.__version__`): written into every trace it records
# (`Trace.version`) and into what it exports.
VERSION = "0.1.0"


class SpanKind(str, enum.Enum):
    CHAIN = "chain"
    LLM = "llm"
    TOOL = "tool"
    RETRIEVER = "retriever"
    EMBEDDING = "embedding"


class Status(str, enum.Enum):
    RUNNING = "running"
    OK = "ok"
    ERROR = "error"
    INTERRUPTED = "interrupted"
    OVER_BUDGET = "over-budget"  # a run --max-… budget refused an LLM call
    PAUSED = "paused"  # LangGraph's interrupt(): the graph waits for a human (a resume goes on), not a failure
    KILLED = "killed"  # never stored: derived when a running trace's process is gone


@dataclass(slots=True)  # slots: a long run holds many spans at once in the writer's queue
class Span:
    """One step of a trace: an LLM call, a tool call, a chain, a retriever or an embedding."""

    id: str
    trace_id: str
    parent_id: str | None
    kind: str
    name: str
    start_us: int
    end_us: int | None = None
    status: str = Status.RUNNING.value
    error_type: str | None = None
    error_message: str | None = None
    inputs: Any = None
    outputs: Any = None
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    # LLM spans only
    model_requested: str | None = None
    model: str | None = None
    provider: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    finish_reason: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    first_token_us: int | None = None
    cost: float | None = None
    streamed: bool = False
    cache_hit: str | None = None  # "exact" or "semantic" when the answer came from the cache
    cost_saved: float | None = None  # what a cache hit would have cost
    attempts: int | None = None  # HTTP attempts made for this call, when retries are on
    request: Any = None  # JSON body as sent to the provider
    response: Any = None  # JSON body as received (for streams: the chunks)


    @property
    def duration_us(self) -> int | None:
        return None if self.end_us is None else self.end_us - self.start_us


@dataclass
class Totals:
    """What a trace's spans add up to."""

    llm_calls: int = 0
    tool_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost: float = 0.0
    unpriced_calls: int = 0
    errors: int = 0
    cache_hits: int = 0
    cost_saved: float = 0.0
    retries: int = 0



@dataclass
class Feedback:
    """A score (and comment) given to a trace."""

    score: int
    comment: str | None
    created_us: int



@dataclass
class Trace:
    """One run of a script (or, with `run --split`, one top-level invocation in it) and its totals."""

    id: str
    name: str
    start_us: int
    script: str | None = None
    argv: list[str] = field(default_factory=list)
    cwd: str | None = None
    end_us: int | None = None
    status: str = Status.RUNNING.value
    exit_code: int | None = None
    error: str | None = None
    traceback: str | None = None  # the script's uncaught exception, as python printed it
    pid: int | None = None
    version: str | None = None
    run_id: str | None = None  # `run --split`: the run this trace is part of (the run's own record has its own id)
    tags: dict[str, str] = field(default_factory=dict)
    totals: Totals = field(default_factory=Totals)
    feedback: list[Feedback] = field(default_factory=list)


    @property
    def duration_us(self) -> int | None:
        return None if self.end_us is None else self.end_us - self.start_us
