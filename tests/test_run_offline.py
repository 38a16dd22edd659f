"""`llmtrace run --offline`: every call answered from the response cache, none sent; a call the cache has
no answer for fails at its call site with the nearest recorded request and a diff, and the server
counts no request. Real scripts through LangChain and the SDK to the scripted server."""

from __future__ import annotations

from conftest import AGENTS, run_cli, server_env

LCEL = str(AGENTS / "lcel_chain.py")
ONE = str(AGENTS / "one_call.py")


def _no_key(env: dict[str, str]) -> dict[str, str]:
    env = dict(env)
    env.pop("OPENAI_API_KEY")
    return env


def test_offline_replays_the_cache_and_sends_nothing(mock_server, monkeypatch):
    server = mock_server()
    env = server_env(server)
    live = run_cli("run", "-q", LCEL, env=env)
    assert live.code == 0, live.stderr
    sent = server.stats.requests
    assert sent == 5
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    offline = run_cli("run", "-q", "--offline", LCEL, env=_no_key(env))
    assert offline.code == 0, offline.stderr
    assert offline.stdout == live.stdout
    assert server.stats.requests == sent  # nothing reached the server


def test_offline_miss_fails_at_the_call_site_with_a_diff(mock_server, monkeypatch):
    server = mock_server()
    env = server_env(server)
    assert run_cli("run", "-q", ONE, "What is the capital of France?", env=env).code == 0
    sent = server.stats.requests
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    miss = run_cli("run", "-q", "--offline", ONE, "What is the capital of Spain?", env=_no_key(env))
    assert miss.code == 1
    assert server.stats.requests == sent
    assert "NoRecordedAnswer: llmtrace --offline: no cached answer for this openai.chat.completions request; nothing was sent" in miss.stderr
    assert "nearest recorded request, - recorded, + sent:" in miss.stderr
    assert "-user: What is the capital of France?" in miss.stderr
    assert "+user: What is the capital of Spain?" in miss.stderr
    # the trace shows the refused call as an error, unsent
    show = run_cli("show", "last", env={"COLUMNS": "200"})
    assert "NoRecordedAnswer" in show.stdout


def test_offline_says_when_the_same_request_was_recorded_for_another_url(mock_server, monkeypatch):
    """The cache keys an answer by the provider's base URL too: the same body recorded against another server
    is named as such, not as a difference the diff cannot show."""
    server, other = mock_server(), mock_server()
    assert run_cli("run", "-q", ONE, "What is the capital of France?", env=server_env(server)).code == 0
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    miss = run_cli("run", "-q", "--offline", ONE, "What is the capital of France?", env=_no_key(server_env(other)))
    assert miss.code == 1 and other.stats.requests == 0
    assert f"the same request was recorded, for another URL than {other.base_url}/chat/completions" in miss.stderr


def test_offline_asked_more_often_than_recorded(mock_server, monkeypatch, tmp_path):
    server = mock_server()
    env = server_env(server)
    twice = tmp_path / "twice.py"
    twice.write_text(
        "import sys\nfrom langchain_openai import ChatOpenAI\nllm = ChatOpenAI(model='gpt-4o-mini')\n"
        "for _ in range(int(sys.argv[1])):\n    print(llm.invoke('same question').content)\n")
    assert run_cli("run", "-q", str(twice), "1", env=env).code == 0
    sent = server.stats.requests
    miss = run_cli("run", "-q", "--offline", str(twice), "2", env=_no_key(env))
    assert miss.code == 1
    assert server.stats.requests == sent
    assert "ask number 2 in this run" in miss.stderr


def test_offline_refuses_no_cache():
    r = run_cli("run", "--offline", "--no-cache", LCEL)
    assert r.code == 2
    assert r.stderr.strip() == "llmtrace: error: --offline answers every call from the response cache: it cannot go with --no-cache"


def test_run_pytest_points_to_the_plugin(tmp_path):
    r = run_cli("run", "-m", "pytest", "--llmtrace", "-q", cwd=tmp_path)
    assert r.code == 2
    assert "pytest --llmtrace traces each test itself" in r.stderr
    (tmp_path / "test_x.py").write_text("def test_x():\n    pass\n")
    r = run_cli("run", "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_x.py", cwd=tmp_path)
    assert r.code == 0, r.stderr
    assert "`pytest --llmtrace` makes each test a trace" in r.stderr
