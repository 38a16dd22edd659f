"""Run a Python script in-process as `__main__` under a trace, exactly as `python script.py` would."""

from __future__ import annotations

import os
import runpy
import signal
import sys
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmtrace import __version__
from llmtrace.errors import ExitCode, UserError
from llmtrace.model import Status, Trace
from llmtrace.recorder import Recorder, now_us


class _DirectWriter:
    """Exporter used when no spool file can be made: one commit per span."""

    def __init__(self, writer: Any):
        self.write_span = writer.write_span

    def close(self) -> None:
        pass


class _Terminated(BaseException):
    """Raised in the main thread on SIGTERM so the trace can be finalised."""


@dataclass
class RunOptions:
    script: Path
    args: list[str] = field(default_factory=list)
    trace_id: str | None = None
    name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    cache: bool = True
    cache_dir: Path | None = None
    cache_ttl_s: float | None = None
    cache_size_mb: int = 1024
    semantic_cache: bool = False
    semantic_threshold: float = 0.95
    embedding_model: str = "text-embedding-3-small"
    retries: int = 4
    mock_url: str | None = None  # the --mock server's base URL: cache keys name it "llmtrace-mock"
    otlp_url: str | None = None  # stream spans live to this OTLP/HTTP endpoint too


def _wire_settings(opts: RunOptions) -> Any:
    from llmtrace.capture.cache import CacheSettings, open_cache
    from llmtrace.capture.retry import RetryPolicy
    from llmtrace.capture.wire import WireSettings
    from llmtrace.home import home

    cs = CacheSettings(
        enabled=opts.cache, directory=opts.cache_dir or home() / "cache", ttl_s=opts.cache_ttl_s,
        size_limit_bytes=opts.cache_size_mb << 20, threshold=opts.semantic_threshold,
        embedding_model=opts.embedding_model,
    )
    cache = open_cache(cs)
    return WireSettings(
        cache=cache, retry=RetryPolicy.from_env(opts.retries), semantic=cs if (opts.semantic_cache and cache) else None,
        url_aliases={opts.mock_url.rstrip("/"): "llmtrace-mock"} if opts.mock_url else {},
    )


def check_script(path: Path) -> Any:
    """Compile the script: a user-facing error for anything that is not a runnable Python file."""
    if not path.exists():
        raise UserError(f"no such script: {path}", ExitCode.SCRIPT)
    if path.is_dir():
        raise UserError(f"{path} is a directory, not a Python script", ExitCode.SCRIPT)
    try:
        source = path.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror}", ExitCode.SCRIPT) from None
    try:
        return compile(source, str(path), "exec", dont_inherit=True)
    except SyntaxError as e:
        if path.suffix not in (".py", ".pyw") or b"\x00" in source:
            raise UserError(f"{path} is not a Python script", ExitCode.SCRIPT) from None
        raise UserError(f"syntax error in {path}, line {e.lineno}: {e.msg}", ExitCode.SCRIPT) from None
    except ValueError:  # null bytes
        raise UserError(f"{path} is not a Python script", ExitCode.SCRIPT) from None


def _trim_traceback(tb: Any, script: str) -> Any:
    """Drop llmtrace's and runpy's frames so the traceback starts in the user's script, as under python."""
    first = tb
    while tb is not None:
        if os.path.abspath(tb.tb_frame.f_code.co_filename) == script:
            return tb
        tb = tb.tb_next
    return first


def _wait_for_threads() -> None:
    # What the interpreter does at exit before it would end: join non-daemon threads (and let
    # executors shut down), so spans from work still running in threads are not lost.
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is not None and threading.current_thread() is threading.main_thread():
        try:
            shutdown()
            return
        except Exception:
            pass
    for t in threading.enumerate():
        if t is not threading.current_thread() and not t.daemon:
            t.join()


def run(opts: RunOptions, writer: Any, *, extra_env: dict[str, str] | None = None) -> tuple[Trace, int]:
    """Run the script under a new trace. Returns the finished trace and the exit code to use.

    The caller has checked the script with `check_script` (before opening the store, so that a
    missing script is reported as such whatever state the store is in).
    """
    from llmtrace.ids import new_trace_id

    script = opts.script.resolve()
    trace = Trace(
        id=opts.trace_id or new_trace_id(),
        name=opts.name or opts.script.name,
        start_us=now_us(),
        script=str(script),
        argv=[str(opts.script), *opts.args],
        cwd=os.getcwd(),
        pid=os.getpid(),
        version=__version__,
        tags=dict(opts.tags),
    )
    for k, v in (extra_env or {}).items():
        os.environ[k] = v
    os.environ["LLMTRACE_TRACE_ID"] = trace.id
    writer.start_trace(trace)
    from llmtrace.store.spool import SpoolingWriter, spool_dir

    try:
        spool: Any = SpoolingWriter(writer, spool_dir(Path(writer.db_path).parent), trace.id)
    except OSError as e:  # no room for the spool: write straight to SQLite instead
        print(f"llmtrace: warning: no spool file ({e.strerror}); spans go straight to the store", file=sys.stderr)
        spool = _DirectWriter(writer)
    exporters: list[Any] = [spool]
    live = None
    if opts.otlp_url:
        from llmtrace.export.otlp import LiveOtlpExporter

        live = LiveOtlpExporter(opts.otlp_url, trace)
        exporters.append(live)
    recorder = Recorder(trace, exporters, writer.redactor)

    from llmtrace import capture

    capture.install(recorder, _wire_settings(opts))

    sys.argv = [str(opts.script), *opts.args]
    sys.path[0] = str(script.parent)

    def on_term(signum: int, frame: Any) -> None:
        raise _Terminated()

    old_term = signal.signal(signal.SIGTERM, on_term) if threading.current_thread() is threading.main_thread() else None

    hook_before = sys.excepthook
    status, code, error = Status.OK.value, 0, None
    try:
        runpy.run_path(str(script), run_name="__main__")
        _wait_for_threads()
    except SystemExit as e:
        code, error = _exit_code(e.code)
        status = Status.OK.value if code == 0 else Status.ERROR.value
    except KeyboardInterrupt as e:
        _print_exception(e, str(script), hook_before)
        status, code, error = Status.INTERRUPTED.value, int(ExitCode.INTERRUPTED), "KeyboardInterrupt"
    except _Terminated:
        status, code, error = Status.INTERRUPTED.value, int(ExitCode.TERMINATED), "terminated (SIGTERM)"
    except BaseException as e:
        _print_exception(e, str(script), hook_before)
        status, code = Status.ERROR.value, int(ExitCode.ERROR)
        error = f"{type(e).__name__}: {e}"[:2000]
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
        try:
            sys.stdout.flush()
        except Exception:
            pass
    with _signals_ignored():
        open_status = Status.INTERRUPTED.value if status == Status.INTERRUPTED.value else Status.ERROR.value
        recorder.close_open(open_status, f"still open when the run ended ({status})")
        capture.uninstall()
        spool.close()
        trace.end_us = now_us()
        trace.status, trace.exit_code, trace.error = status, code, error
        try:
            writer.finish_trace(trace)
        except Exception as e:
            print(f"llmtrace: warning: could not finish the trace record ({e})", file=sys.stderr)
        if live is not None:
            from llmtrace.store.queries import get_trace

            try:
                live.close(get_trace(writer.db, trace.id))
            except Exception:
                live.close(trace)
    return trace, code


class _signals_ignored:
    def __enter__(self) -> None:
        self.saved = None
        if threading.current_thread() is threading.main_thread():
            self.saved = signal.signal(signal.SIGINT, signal.SIG_IGN)

    def __exit__(self, *exc: Any) -> None:
        if self.saved is not None:
            signal.signal(signal.SIGINT, self.saved)


def _exit_code(value: Any) -> tuple[int, str | None]:
    if value is None:
        return 0, None
    if isinstance(value, int):
        return value, (f"exit code {value}" if value else None)
    # sys.exit("message"): python prints it to stderr and exits 1.
    print(value, file=sys.stderr)
    return 1, str(value)[:2000]


def _print_exception(e: BaseException, script: str, default_hook: Any) -> None:
    tb = _trim_traceback(e.__traceback__, script)
    try:
        if sys.excepthook not in (sys.__excepthook__, default_hook):  # the script installed its own
            sys.excepthook(type(e), e, tb)
        else:
            traceback.print_exception(type(e), e, tb)
    except Exception:
        traceback.print_exception(type(e), e, tb)
    sys.stderr.flush()
