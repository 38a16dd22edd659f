"""The project's agent tests: a chain, a batch, a stream, async, an agent with tools, threads, none."""

import threading

import pytest

import agent


def test_chain():
    answer = agent.chain().invoke({"question": "What is the capital of France?"},
                                  config={"metadata": {"user_id": "carol"}, "tags": ["smoke"]})
    assert answer.startswith("I can only")


def test_batch():
    answers = agent.chain().batch([{"question": f"question {i}"} for i in range(3)])
    assert [a.endswith(f"question {i}") for i, a in enumerate(answers)] == [True] * 3


def test_stream():
    pieces = list(agent.chain().stream({"question": "stream this please"}))
    assert len(pieces) > 1
    assert "".join(pieces).endswith("stream this please")


@pytest.mark.asyncio
async def test_async():
    answer = await agent.chain().ainvoke({"question": "asked from asyncio"})
    assert answer.endswith("asked from asyncio")


def test_agent_with_tools():
    state = agent.agent().invoke({"messages": [{"role": "user", "content": "What is 3 to the fifth power times 36, squared?"}]})
    assert "76527504" in state["messages"][-1].content


def test_thread():
    out = []
    worker = threading.Thread(target=lambda: out.append(agent.chain().invoke({"question": "from a thread"})))
    worker.start()
    worker.join()
    assert out[0].endswith("from a thread")


def test_fixture(llmtrace):
    agent.chain().invoke({"question": "counted by the fixture"})
    assert llmtrace.llm_calls == 1
    assert llmtrace.tokens > 0
    assert len(llmtrace.id) == 36


def test_without_llm_calls():
    assert sum(range(10)) == 45


def test_child_processes():
    import multiprocessing
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    code = "import agent; print(agent.chain().invoke({'question': 'from a child process'}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True)
    assert out.stdout.strip().endswith("from a child process")
    forked = multiprocessing.get_context("fork").Process(target=_in_a_fork)
    forked.start()
    forked.join()
    assert forked.exitcode == 0


def _in_a_fork():
    assert agent.chain().invoke({"question": "from a forked process"}).endswith("from a forked process")
