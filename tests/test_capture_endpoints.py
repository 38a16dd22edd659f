"""Endpoints beyond chat.completions.create, through real HTTP to the scripted server."""

from __future__ import annotations

from conftest import AGENTS, last_trace, run_cli, server_env


def test_failed_parse_keeps_tokens_and_cost_and_async_embeddings_are_spans(llmtrace_home, mock_server):
    server = mock_server({"replies": [{"when": {"structured": True}, "json": {"name": "Ada", "age": "not a number"}}]})
    r = run_cli("run", str(AGENTS / "parse_fails.py"), env=server_env(server))
    assert r.code == 0, r.stderr
    assert r.stdout.splitlines() == ["parse failed: ValidationError", "2 64"]
    _, spans = last_trace(llmtrace_home)
    llm = next(s for s in spans if s.kind == "llm")
    # The HTTP exchange succeeded and was billed; the SDK's parsing failed afterwards.
    assert llm.status == "error" and llm.input_tokens and llm.output_tokens and llm.cost and llm.cost > 0
    assert llm.request["response_format"]["type"] == "json_schema" and llm.response["usage"]
    emb = [s for s in spans if s.kind == "embedding"]
    assert len(emb) == 1 and emb[0].outputs == {"vectors": 2, "dimensions": 64}
    usage = server.stats.as_dict()["usage"]
    assert llm.input_tokens + emb[0].input_tokens == usage["input_tokens"]
    assert emb[0].cost is not None and emb[0].output_tokens == 0


def test_falsy_values_are_stored_as_values(tmp_path):
    """A tool that returns 0 (or "" or False) shows that value, not null."""
    from llmtrace.model import Span, Trace
    from llmtrace.redact import Redactor
    from llmtrace.store import open_store
    from llmtrace.store.queries import get_spans
    from llmtrace.store.writer import StoreWriter

    db = open_store(tmp_path / "t.db")
    w = StoreWriter(db, Redactor())
    w.start_trace(Trace(id="t", name="t", start_us=1, pid=1))
    for i, out in enumerate([0, "", False, [], None]):
        w.write_span(Span(id=f"s{i}", trace_id="t", parent_id=None, kind="tool", name="x", start_us=i, end_us=i + 1,
                          status="ok", inputs={"a": 1}, outputs=out))
    assert [s.outputs for s in sorted(get_spans(db, "t"), key=lambda s: s.id)] == [0, "", False, None, None]
