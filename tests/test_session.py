"""The tracing core (core/session.py) that every front door starts: started and finished as a unit, and
safe to start twice in one process (the second nests as a span; nothing is patched twice)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from conftest import server_env, store

SCRIPT = textwrap.dedent('''
    import json, sys
    import openai
    from llmtrace.core.options import RunOptions
    from llmtrace.clock import now_us
    from llmtrace.core.session import Session, active
    from llmtrace.ids import new_trace_id
    from llmtrace.model import Trace
    from llmtrace.redact import Redactor
    from llmtrace.store import open_store
    from llmtrace.store.writer import StoreWriter

    def session(name):
        writer = StoreWriter(open_store(), Redactor.from_environ())
        trace = Trace(id=new_trace_id(), name=name, start_us=now_us())
        return Session(RunOptions(script=name, cache=False),
                       writer, trace)

    client = openai.OpenAI()
    def ask(text):
        return client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}])

    outer = session("outer").start()
    ask("one")
    inner = session("inner").start()  # while outer is active: a span of outer's trace
    same_active = active() is outer
    ask("two")
    inner.finish()
    ask("three")
    outer.finish()
    untraced = ask("four")  # after the session: not recorded
    request = openai._base_client.SyncAPIClient.request
    print(json.dumps({"outer": outer.trace.id, "inner": inner.trace.id, "same_active": same_active,
                      "wrapped_once": not getattr(getattr(request, "__wrapped__", None), "__llmtrace_wrapped__", False),
                      "active_after": active() is None}))
''')


def test_a_second_session_nests_in_the_first_and_patches_nothing_twice(llmtrace_home, mock_server, tmp_path):
    server = mock_server({"replies": [{"content": "a"}, {"content": "b"}, {"content": "c"}, {"content": "d"}]})
    script = tmp_path / "sessions.py"
    script.write_text(SCRIPT)
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=False,
                       env={**os.environ, **server_env(server)})
    assert p.returncode == 0, p.stderr
    seen = json.loads(p.stdout.strip().splitlines()[-1])
    assert seen["outer"] == seen["inner"]  # one trace
    assert seen["same_active"] and seen["wrapped_once"] and seen["active_after"]
    db = store(llmtrace_home)
    assert db.execute("SELECT id, name, status FROM traces").fetchall() == [(seen["outer"], "outer", "ok")]
    spans = db.execute("SELECT id, parent_id, kind, name FROM spans ORDER BY start_us").fetchall()
    kinds = [(kind, name) for _, _, kind, name in spans]
    assert kinds == [("llm", "openai.chat.completions"), ("chain", "inner"), ("llm", "openai.chat.completions"), ("llm", "openai.chat.completions")]
    inner_id = spans[1][0]
    assert [parent for _, parent, _, _ in spans] == [None, None, inner_id, None]  # "two" under inner
    assert server.stats.by_path["/v1/chat/completions"] == 4  # "four" was sent, untraced
