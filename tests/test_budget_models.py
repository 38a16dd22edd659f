"""Budget admission of LLM runs (unit): a model class is counted at its run's start until the wire capture
has claimed one of its calls in the same mode (sync, or in an event loop)."""

from __future__ import annotations

import asyncio

import pytest

from llmtrace.capture.budget import Budget, Limits
from llmtrace.errors import BudgetExceeded
from llmtrace.model import Span


def _span(n: int, name: str = "ChatGoogleGenerativeAI") -> Span:
    return Span(id=f"s{n}", trace_id="t", parent_id=None, kind="llm", name=name, start_us=0)


def test_a_wire_served_model_is_counted_once_and_a_hit_is_handed_back():
    budget = Budget(Limits(max_calls=2))
    first = _span(1)
    budget.admit_run(first)  # not known to the wire yet: counted at the start
    budget.admit_call(first, claimed=True, hit=True)  # answered from the cache: handed back
    assert budget.calls == 0
    for n in (2, 3):
        run = _span(n)
        budget.admit_run(run)  # now known: left to the wire
        budget.admit_call(run, claimed=True, hit=False)
    assert budget.calls == 2
    with pytest.raises(BudgetExceeded):
        budget.admit_run(_span(4, "FakeListChatModel"))  # a callback-only model is refused at its start


def test_async_runs_of_a_model_served_sync_at_the_wire_are_still_counted():
    budget = Budget(Limits(max_calls=2))
    run = _span(1)
    budget.admit_run(run)
    budget.admit_call(run, claimed=True, hit=False)  # the sync path goes through the wire
    assert budget.calls == 1

    async def in_a_loop() -> None:  # its async calls went another way (never claimed): counted at the start
        budget.admit_run(_span(2))
        with pytest.raises(BudgetExceeded):
            budget.admit_run(_span(3))

    asyncio.run(in_a_loop())
    assert budget.calls == 2
