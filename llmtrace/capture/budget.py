"""Run budgets (`run --max-cost USD --max-calls N --max-tokens N`): stop a runaway agent at a known point.

Before an LLM call is sent, `admit()` checks what the run has spent; once a limit is reached the call
is not sent and BudgetExceeded is raised at the call site, in the script. Calls answered from the
cache or a replay cost nothing and count for nothing.

Every chat model is held to it. A call the wire capture sends is admitted there (a cache hit is not
counted); a model seen only through LangChain's callbacks is admitted when its run starts
(`admit_run`), and BudgetExceeded is raised from the callback, at the call site. Which models the wire
serves is learnt from the calls it claims: until the first one is claimed, a model's run is counted at its
start and handed back if the wire answers it from the cache. Spending is summed from finished spans (this
is also an exporter), so `--max-cost` stops within one call of its limit; calls llmtrace cannot
price count toward --max-calls and --max-tokens only, said once on stderr.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass

from llmtrace.errors import BudgetExceeded
from llmtrace.model import Span


def _served(span: Span) -> tuple[str, bool]:
    """A model class and whether it runs in an event loop: an SDK may send its async calls another way (google-genai
    through aiohttp when that is installed), unseen by the wire capture."""
    asyncio = sys.modules.get("asyncio")
    return span.name, asyncio is not None and asyncio._get_running_loop() is not None


@dataclass
class Limits:
    max_cost: float | None = None
    max_calls: int | None = None
    max_tokens: int | None = None


class Budget:
    def __init__(self, limits: Limits):
        self.limits = limits
        self.calls = 0  # calls sent (admitted)
        self.tokens = 0
        self.cost = 0.0
        self.stopped: str | None = None  # why, once a call was refused
        self._lock = threading.Lock()
        self._unpriced_said = False
        self._wire_models: set[tuple[str, bool]] = set()  # (LLM span name, async) the wire capture claimed calls of
        self._at_start: set[str] = set()  # LLM spans counted when their run started, not yet claimed or ended

    def spent(self) -> str:
        return f"{self.calls:,} LLM call{'s' if self.calls != 1 else ''}, {self.tokens:,} tokens, ${self.cost:.6f}"

    def _reached(self) -> str | None:
        lim = self.limits
        if lim.max_calls is not None and self.calls >= lim.max_calls:
            return f"--max-calls {lim.max_calls}"
        if lim.max_tokens is not None and self.tokens >= lim.max_tokens:
            return f"--max-tokens {lim.max_tokens:,}"
        if lim.max_cost is not None and self.cost >= lim.max_cost:
            return "--max-cost $" + f"{lim.max_cost:.6f}".rstrip("0").rstrip(".")
        return None

    def admit(self) -> None:
        """A call is about to be sent: count it, or refuse it (raises BudgetExceeded)."""
        with self._lock:
            reached = self._reached()
            if reached is None:
                self.calls += 1
                return
            message = f"llmtrace budget {reached} reached after {self.spent()}: this call was not sent"
            self.stopped = self.stopped or message
        raise BudgetExceeded(message)

    def admit_run(self, span: Span) -> None:
        """LangChain starts an LLM run: count it unless the wire capture serves its model (raises BudgetExceeded)."""
        if _served(span) in self._wire_models:
            return
        self.admit()
        self._at_start.add(span.id)

    def admit_call(self, span: Span | None, claimed: bool, hit: bool) -> None:
        """The wire capture is about to send (`hit` False) or replay a call; `claimed`: `span` is the
        LangChain run's span. A run counted at its start is not counted twice, and handed back on a hit."""
        if span is not None and claimed:
            self._wire_models.add(_served(span))
            if span.id in self._at_start:
                self._at_start.discard(span.id)
                if hit:
                    with self._lock:
                        self.calls -= 1
                return
        if not hit:
            self.admit()

    # An exporter: the recorder hands it every finished span (cost already stamped).
    def write_span(self, span: Span) -> None:
        self._at_start.discard(span.id)
        if span.kind not in ("llm", "embedding") or span.cache_hit:
            return
        with self._lock:
            self.tokens += (span.input_tokens or 0) + (span.output_tokens or 0)
            if span.cost is not None:
                self.cost += span.cost
                return
            say = self.limits.max_cost is not None and span.status != "error" and not self._unpriced_said
            self._unpriced_said = self._unpriced_said or say
        if say:
            print(f"llmtrace: warning: --max-cost cannot be enforced for calls to {span.model or span.model_requested} "
                  "(no price known); they count toward --max-calls and --max-tokens only", file=sys.stderr)
