"""Local neighbours: `rm` cannot pull a trace from under a run that is still recording it, and the
scripted server's control endpoint takes orders only from whoever holds its token."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

from conftest import AGENTS, HANG, ROOT, last_trace, run_cli, server_env


def test_rm_refuses_a_trace_still_being_recorded(mock_server, arrivals, llmtrace_home):
    server = mock_server()
    watch = arrivals(server)
    gate = watch.hold(1)  # the second call waits at the server: the run is alive and recording
    env = {**os.environ, **server_env(server), "PYTHONUNBUFFERED": "1"}
    run = subprocess.Popen([sys.executable, "-m", "llmtrace", "run", "-q", "--no-cache", str(AGENTS / "slow_agent.py"), "3"],
                           env=env, cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert watch.wait_for(2)
        r = run_cli("rm", "last")
        assert r.code == 2 and "still being recorded" in r.stderr and r.stderr.count("\n") == 1, r.stderr
        assert "Traceback" not in r.stderr
        gate.set()
        out, err = run.communicate(timeout=HANG)
        assert run.returncode == 0, err
    finally:
        gate.set()
        if run.poll() is None:
            run.kill()
    trace, spans = last_trace(llmtrace_home)
    assert trace.status == "ok" and trace.totals.llm_calls == 3 and len([s for s in spans if s.kind == "llm"]) == 3
    r = run_cli("rm", trace.id[:8])  # once the run is over, it goes
    assert r.code == 0 and "deleted 1 trace" in r.stderr
    assert run_cli("ls", "--json").stdout.strip() == "[]"


def _reset(server, headers=None):
    req = urllib.request.Request(f"http://127.0.0.1:{server.port}/_mock/reset", method="POST",
                                 data=json.dumps({"faults": [500, 500, 500]}).encode(), headers=headers or {})
    return urllib.request.urlopen(req)


def test_mock_control_needs_the_servers_token(mock_server):
    import openai

    server = mock_server({"replies": [{"content": "fine"}]})
    c = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0)
    msgs = [{"role": "user", "content": "hi"}]
    for headers in (None, {"X-Mock-Token": "guessed"}, {"X-Mock-Token": ""}):
        try:
            _reset(server, headers)
            raise AssertionError(f"a reset without the token was taken ({headers})")
        except urllib.error.HTTPError as e:
            assert e.code == 403
    # Nothing changed: no fault was set by those requests.
    assert c.chat.completions.create(model="m", messages=msgs).choices[0].message.content == "fine"
    assert _reset(server, server.control_headers).status == 200
    try:
        c.chat.completions.create(model="m", messages=msgs)
        raise AssertionError("the token's reset set no fault")
    except openai.InternalServerError:
        pass
    assert len(server.control_token) >= 24 and server.control_token != mock_server().control_token
