"""`llmtrace run` and `replay`'s work, without typer: options checked, the store opened, the script run
under a session, the summary printed, and the process ended as the script ended.

`llmtrace run` is the one command whose start-up is added to the user's program, so it must not pay for
typer and click (~40 ms of imports and of building every command's parser): the entry point hands the
common forms (`llmtrace.cli.fast_run`) to `start_run` directly, and the typer command calls the same.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path
from typing import Any

from llmtrace.cli.common import (
    open_cli_store,
    parse_tags,
    stderr_console,
    styled_stderr,
)
from llmtrace.errors import ExitCode, UserError


def find_mock_script(script: Path, explicit: Path | None) -> Any:
    from llmtrace.mock import Script

    candidates = [explicit] if explicit else [script.with_suffix(s) for s in (".mock.json", ".mock.yaml", ".mock.yml")]
    for path in candidates:
        if path is not None and path.is_file():
            try:
                return Script.load(path)
            except (ValueError, OSError) as e:
                raise UserError(f"bad mock script {path}: {e}") from None
    if explicit:
        raise UserError(f"no such mock script: {explicit}")
    return Script()


def report_run(db: Any, trace: Any) -> None:
    """The run summary on stderr (the totals the store summed when it finished the trace; a split run's
    traces summed again)."""
    from llmtrace.render.summary import plain_summary, run_summary

    parts = None
    if trace.run_id:
        from llmtrace.store.queries import run_parts

        try:
            parts = run_parts(db, trace.id)
        except Exception:
            pass
    if styled_stderr():
        stderr_console().print(run_summary(trace, parts))
    else:
        sys.stderr.write(plain_summary(trace, parts))


def start_run(script_arg: str, args: list[str] | None, *, module: bool = False, output: Path | None = None,
              **given: Any) -> None:
    """`llmtrace run`'s work. `given`: the options typed on the command line (`llmtrace.cli.settings`'s
    keys); the others come from the environment, then pyproject.toml, then their defaults. `module`: run
    `script_arg` as `python -m` does. `output`: where an executed notebook is written."""
    from llmtrace.cli.settings import resolve

    v = resolve(given)
    mock, mock_script, trace_id, name, tag, quiet = (v[k] for k in ("mock", "mock_script", "trace_id", "name", "tag", "quiet"))
    no_cache, cache_mode, no_children, cache_dir, cache_ttl = (v[k] for k in ("no_cache", "cache_mode", "no_children", "cache_dir", "cache_ttl"))
    cache_size, semantic_cache, semantic_threshold, embedding_model = (v[k] for k in ("cache_size", "semantic_cache", "semantic_threshold", "embedding_model"))
    otlp, otlp_header, project, retries, split = (v[k] for k in ("otlp", "otlp_header", "project", "retries", "split"))
    max_cost, max_calls, max_tokens = v["max_cost"], v["max_calls"], v["max_tokens"]
    offline = v["offline"]
    if offline and no_cache:
        raise UserError("--offline answers every call from the response cache: it cannot go with --no-cache")
    if offline and semantic_cache:
        raise UserError("--offline cannot go with --semantic-cache: its look-ups embed the prompt with a live call")
    if cache_mode not in ("replay", "reuse"):
        raise UserError(f"bad --cache-mode {cache_mode!r}: use replay or reuse")
    tags = parse_tags(tag)
    if project is not None:
        if not project.strip():
            raise UserError("bad --project '': give a name")
        tags["project"] = project.strip()
    ttl_s = None
    if cache_ttl:
        import llmtrace.timespec as timespec

        ttl_s = timespec.parse_duration(cache_ttl)
    if trace_id is not None:
        try:
            trace_id = str(uuid.UUID(trace_id))
        except ValueError:
            raise UserError(f"bad --trace-id {trace_id!r}: expected a UUID") from None
    from llmtrace.run import script as runner

    notebook = None
    if not module and script_arg.endswith(".ipynb"):  # a notebook: executed in a fresh kernel (llmtrace/notebook/run.py)
        from llmtrace.notebook.run import check_notebook

        notebook = check_notebook(script_arg)
        target = script_arg
    elif output is not None:
        raise UserError("--output is for notebooks (NOTEBOOK.ipynb): a script writes its own files")
    if notebook is not None:
        pass
    elif module:
        target = runner.find_module(script_arg)
    else:
        script_arg = runner.find_script(script_arg)
        target = script_arg
        problem = runner.check_script(script_arg)
        if problem is not None:  # a SyntaxError: reported as python reports it, with python's status
            runner.print_syntax_error(problem)
            raise SystemExit(int(ExitCode.ERROR))
    if (script_arg if module else Path(script_arg).name) in ("pytest", "py.test"):
        _pytest_hint(list(args or []), quiet)
    otlp_url, otlp_headers = None, {}
    wants_otlp = otlp or otlp_header or any(os.environ.get(f"OTEL_EXPORTER_OTLP_{v}ENDPOINT") for v in ("", "TRACES_"))
    if wants_otlp:  # the exporter (urllib, protobuf) is not imported by a run that does not stream
        from llmtrace.export import otlp as otlp_mod

        otlp_url = otlp_mod.endpoint(otlp)
        otlp_headers = otlp_mod.headers(otlp_header)
    if otlp_header and not otlp_url:
        raise UserError("--otlp-header needs an OTLP endpoint: pass --otlp URL or set OTEL_EXPORTER_OTLP_ENDPOINT")
    if otlp_url and not otlp_mod.available():  # (otlp_url is set only where otlp_mod was imported)
        if otlp:
            raise UserError(otlp_mod.INSTALL_HINT)
        print(f"llmtrace: warning: OTEL_EXPORTER_OTLP_ENDPOINT is set but {otlp_mod.INSTALL_HINT}; not streaming spans",
              file=sys.stderr)
        otlp_url = None
    opts = runner.RunOptions(
        script_arg, list(args or []), trace_id, name, tags, cache=not no_cache, cache_dir=cache_dir,
        cache_ttl_s=ttl_s, cache_size_mb=cache_size,
        semantic_cache=semantic_cache, semantic_threshold=semantic_threshold, embedding_model=embedding_model,
        retries=retries, cache_mode=cache_mode, children=not no_children, otlp_url=otlp_url, otlp_headers=otlp_headers,
        split=split, max_cost=max_cost, max_calls=max_calls, max_tokens=max_tokens, offline=offline,
    )
    env = {}
    if offline:  # no key needed: the clients still construct, and nothing is sent
        env = {f"{sdk}_API_KEY": "llmtrace-offline-no-key" for sdk in ("OPENAI", "ANTHROPIC") if not os.environ.get(f"{sdk}_API_KEY")}
    launch(opts, find_mock_script(Path(target), mock_script) if mock else None, quiet, env,
           module=script_arg if module else None, notebook=notebook, output=output)



def _pytest_hint(args: list[str], quiet: bool) -> None:
    """`llmtrace run -m pytest` traces the whole session as one trace; the plugin does better."""
    if any(a == "--llmtrace" or a.startswith("--llmtrace-record") for a in args):
        raise UserError("pytest --llmtrace traces each test itself: run `pytest --llmtrace` without `llmtrace run`")
    if not quiet:
        print("llmtrace: the whole pytest session is one trace here; `pytest --llmtrace` makes each test a trace and "
              "records its answers for offline replay", file=sys.stderr)


def launch(opts: Any, mock_script: Any, quiet: bool, env: dict[str, str] | None = None,
           after: Any = None, module: str | None = None, notebook: Any = None, output: Path | None = None) -> None:
    """Run `opts` under a new trace (with the --mock server when given its reply script), print the
    summary (then `after()`), and exit as the script did. `module`: run it as `python -m module`."""
    from llmtrace.ids import new_trace_id
    from llmtrace.redact import Redactor
    from llmtrace.run import script as runner
    from llmtrace.store.writer import StoreWriter

    db = open_cli_store()
    opts.trace_id = opts.trace_id or new_trace_id()
    if db.execute("SELECT 1 FROM traces WHERE id = ?", (opts.trace_id,)).fetchone():
        raise UserError(f"a trace with id {opts.trace_id} already exists")
    writer = StoreWriter(db, Redactor.from_environ())
    env = dict(env or {})
    server = None
    if mock_script is not None:
        from llmtrace.mock import MockServer

        server = MockServer(mock_script).start()
        env.update({"OPENAI_BASE_URL": server.base_url, "OPENAI_API_BASE": server.base_url, "OPENAI_API_KEY": "llmtrace-mock-key",
                    "ANTHROPIC_BASE_URL": server.anthropic_base_url, "ANTHROPIC_API_KEY": "llmtrace-mock-key",
                    "OLLAMA_HOST": server.anthropic_base_url, "GOOGLE_GEMINI_BASE_URL": server.anthropic_base_url,
                    "GOOGLE_API_KEY": "llmtrace-mock-key"})
        opts.mock_url = server.base_url
        opts.tags["mock"] = "true"  # answered by the scripted server: `cost` leaves it out unless --include-mock

    def report(trace: Any) -> None:
        if not quiet:
            report_run(db, trace)
        if after is not None:
            after()

    try:
        if notebook is not None:
            from llmtrace.notebook.run import run_notebook

            trace, code = run_notebook(opts, writer, notebook, output, extra_env=env, report=report)
        else:
            trace, code = runner.run(opts, writer, extra_env=env, report=report, module=module)
    finally:
        if server is not None:
            server.stop()
    if code < 0:  # the script died of a signal: so does this process, as under python
        runner.die_of(-code)
    raise SystemExit(code)

