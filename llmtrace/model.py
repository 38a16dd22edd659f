"""Plain data objects shared by capture, store and render: traces, spans and their states.

Dataclasses (`fields`, `asdict`, `replace` work on them), but with no method generated when the module
is imported, since every `llmtrace run` imports it: every class has its `__init__` written out
(each generated one is compiled at import: a few million instructions of a run's start-up; a test
holds them to the fields), every class a docstring (else dataclass computes one with `inspect`), and
one `__repr__` and one `__eq__` for all (field by field, as dataclass's). Annotations are evaluated,
not strings (no `from __future__ import annotations`): dataclass tests a string one for ClassVar and
InitVar with a regex and module look-ups, ~1.4 M instructions over the four classes.
"""

import enum
from dataclasses import dataclass, field, fields
from typing import Any


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
    KILLED = "killed"  # never stored: derived when a running trace's process is gone


def _repr(self: Any) -> str:
    return f"{type(self).__name__}({', '.join(f'{f.name}={getattr(self, f.name)!r}' for f in fields(self))})"


def _eq(self: Any, other: Any) -> Any:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return all(getattr(self, f.name) == getattr(other, f.name) for f in fields(self))


@dataclass(slots=True, init=False, repr=False, eq=False)
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

    def __init__(
        self, id: str, trace_id: str, parent_id: str | None, kind: str, name: str, start_us: int,
        end_us: int | None = None, status: str = Status.RUNNING.value, error_type: str | None = None,
        error_message: str | None = None, inputs: Any = None, outputs: Any = None, tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None, model_requested: str | None = None, model: str | None = None,
        provider: str | None = None, input_tokens: int | None = None, output_tokens: int | None = None,
        cached_tokens: int | None = None, reasoning_tokens: int | None = None, finish_reason: str | None = None,
        tool_calls: list[dict[str, Any]] | None = None, first_token_us: int | None = None, cost: float | None = None,
        streamed: bool = False, cache_hit: str | None = None, cost_saved: float | None = None,
        attempts: int | None = None, request: Any = None, response: Any = None,
    ) -> None:
        self.id, self.trace_id, self.parent_id, self.kind, self.name = id, trace_id, parent_id, kind, name
        self.start_us, self.end_us, self.status = start_us, end_us, status
        self.error_type, self.error_message, self.inputs, self.outputs = error_type, error_message, inputs, outputs
        self.tags = [] if tags is None else tags
        self.metadata = {} if metadata is None else metadata
        self.model_requested, self.model, self.provider = model_requested, model, provider
        self.input_tokens, self.output_tokens, self.cached_tokens = input_tokens, output_tokens, cached_tokens
        self.reasoning_tokens, self.finish_reason, self.tool_calls = reasoning_tokens, finish_reason, tool_calls
        self.first_token_us, self.cost, self.streamed, self.cache_hit = first_token_us, cost, streamed, cache_hit
        self.cost_saved, self.attempts, self.request, self.response = cost_saved, attempts, request, response

    __repr__, __eq__ = _repr, _eq

    @property
    def duration_us(self) -> int | None:
        return None if self.end_us is None else self.end_us - self.start_us


@dataclass(init=False, repr=False, eq=False)
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

    def __init__(
        self, llm_calls: int = 0, tool_calls: int = 0, input_tokens: int = 0, output_tokens: int = 0,
        cached_tokens: int = 0, cost: float = 0.0, unpriced_calls: int = 0, errors: int = 0, cache_hits: int = 0,
        cost_saved: float = 0.0, retries: int = 0,
    ) -> None:
        self.llm_calls, self.tool_calls = llm_calls, tool_calls
        self.input_tokens, self.output_tokens = input_tokens, output_tokens
        self.cached_tokens, self.cost, self.unpriced_calls, self.errors = cached_tokens, cost, unpriced_calls, errors
        self.cache_hits, self.cost_saved, self.retries = cache_hits, cost_saved, retries

    __repr__, __eq__ = _repr, _eq


@dataclass(init=False, repr=False, eq=False)
class Feedback:
    """A score (and comment) given to a trace."""

    score: int
    comment: str | None
    created_us: int

    def __init__(self, score: int, comment: str | None, created_us: int) -> None:
        self.score, self.comment, self.created_us = score, comment, created_us

    __repr__, __eq__ = _repr, _eq


@dataclass(init=False, repr=False, eq=False)
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

    def __init__(
        self, id: str, name: str, start_us: int, script: str | None = None, argv: list[str] | None = None,
        cwd: str | None = None, end_us: int | None = None, status: str = Status.RUNNING.value,
        exit_code: int | None = None, error: str | None = None, traceback: str | None = None, pid: int | None = None,
        version: str | None = None, run_id: str | None = None, tags: dict[str, str] | None = None,
        totals: Totals | None = None, feedback: list[Feedback] | None = None,
    ) -> None:
        self.id, self.name, self.start_us, self.script, self.cwd = id, name, start_us, script, cwd
        self.argv = [] if argv is None else argv
        self.end_us, self.status, self.exit_code, self.error, self.traceback = end_us, status, exit_code, error, traceback
        self.pid, self.version, self.run_id = pid, version, run_id
        self.tags = {} if tags is None else tags
        self.totals = Totals() if totals is None else totals
        self.feedback = [] if feedback is None else feedback

    __repr__, __eq__ = _repr, _eq

    @property
    def duration_us(self) -> int | None:
        return None if self.end_us is None else self.end_us - self.start_us
