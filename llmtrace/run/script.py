"""Where a run starts: a Python script run in-process as `__main__` under a tracing session, exactly as
`python script.py` would run it (argv, sys.path[0], exit status, signals, the traceback it prints)."""

from __future__ import annotations

import builtins
import importlib.machinery
import os
import signal
import sys
import threading
import traceback
import types
from pathlib import Path
from typing import Any, Callable

from llmtrace.model import VERSION
from llmtrace.core.options import RunOptions
from llmtrace.clock import now_us
from llmtrace.core.recorder import stack_text
from llmtrace.core.session import Session
from llmtrace.errors import ExitCode, UserError
from llmtrace.model import Status, Trace

__all__ = ["RunOptions", "check_script", "die_of", "find_module", "find_script", "print_syntax_error", "run", "script_path"]


def script_path(arg: str) -> str:
    """The script's path as python makes it: joined to the working directory, not normalised."""
    return arg if os.path.isabs(arg) else os.path.join(os.getcwd(), arg)


def find_script(arg: str) -> str:
    """The file `llmtrace run ARG` runs: ARG itself when it exists or names a path, else the console script
    of that name on PATH (`pytest`, `uvicorn`: as the shell would find it, which python then runs)."""
    if os.path.lexists(arg) or os.sep in arg or (os.altsep and os.altsep in arg):
        return arg
    import shutil

    found = shutil.which(arg)
    if found is None:
        return arg  # check_script says there is no such script
    try:
        with open(found, "rb") as f:
            head = f.read(512)
    except OSError as e:
        raise UserError(f"cannot read {found}: {e.strerror}", ExitCode.SCRIPT) from None
    # pip writes `#!/path/python`, or for a long path a `#!/bin/sh` line that execs python on the file
    first_lines = head.split(b"\n", 2)[:2]
    if not (head.startswith(b"#!") and any(b"python" in line for line in first_lines)):
        raise UserError(f"{arg} is {found}, which is not a Python script: llmtrace runs Python programs only",
                        ExitCode.SCRIPT)
    return found


def find_module(name: str) -> str:
    """The file `python -m NAME` would run, found without running anything (a package's __init__ runs in
    the trace, as under python); a UserError when there is none. The lookup is python's: the working
    directory first on the path."""
    import importlib.util

    from importlib.machinery import PathFinder

    if not name or name.startswith(".") or not all(part.isidentifier() for part in name.split(".")):
        raise UserError(f"bad module name {name!r}", ExitCode.SCRIPT)
    path = [os.getcwd(), *sys.path[1:]]
    parts = name.split(".")
    spec = None
    for i, part in enumerate(parts):
        if i == 0:
            spec = PathFinder.find_spec(part, path)
            if spec is None:
                try:  # a built-in or frozen module, or one already imported by llmtrace itself
                    spec = importlib.util.find_spec(part)
                except (ImportError, ValueError):
                    spec = None
        elif spec is not None and spec.submodule_search_locations is not None:
            spec = PathFinder.find_spec(".".join(parts[: i + 1]), list(spec.submodule_search_locations))
        else:
            spec = None
        if spec is None:
            raise UserError(f"no module named {'.'.join(parts[: i + 1])}", ExitCode.SCRIPT)
    assert spec is not None
    if spec.submodule_search_locations is not None:  # a package: its __main__
        main = PathFinder.find_spec(name + ".__main__", list(spec.submodule_search_locations))
        if main is None:
            raise UserError(f"{name} is a package and cannot be run: it has no __main__ module", ExitCode.SCRIPT)
        spec = main
    return spec.origin if spec.origin and os.path.isfile(spec.origin) else name


_checked: tuple[str, bytes, Any] | None = None  # (file name, source, code) of the script check_script compiled


def check_script(arg: str) -> SyntaxError | None:
    """A user-facing error for anything that is not a runnable Python file; a SyntaxError is returned,
    to be reported as python reports it (its own message, exit status 1)."""
    path = Path(arg)
    if not path.exists():
        raise UserError(f"no such script: {path}", ExitCode.SCRIPT)
    if path.is_dir():
        raise UserError(f"{path} is a directory, not a Python script", ExitCode.SCRIPT)
    try:
        source = path.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror}", ExitCode.SCRIPT) from None
    global _checked
    try:
        filename = script_path(arg)
        _checked = (filename, source, compile(source, filename, "exec", dont_inherit=True))
    except SyntaxError as e:
        if path.suffix not in (".py", ".pyw") or b"\x00" in source:
            raise UserError(f"{path} is not a Python script", ExitCode.SCRIPT) from None
        return e
    except ValueError:  # null bytes
        raise UserError(f"{path} is not a Python script", ExitCode.SCRIPT) from None
    return None


def print_syntax_error(error: SyntaxError) -> None:
    traceback.print_exception(type(error), error, None)
    sys.stderr.flush()


def die_of(signum: int) -> None:
    """End this process by `signum` with its default action, as python does on an uncaught
    KeyboardInterrupt, so a parent sees the signal (a shell prints 130 or 143)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    os._exit(128 + signum)  # pragma: no cover - only if the signal did not end us


_term_handler: Any = None  # the run's SIGTERM handler, which a fork child must not keep


def _ours_in_parent_only(handler: Any) -> None:
    """A fork child starts with SIGTERM's default action, as under python.

    Kept, our handler would only re-raise the signal with the default action, but a Python handler
    runs between bytecodes: a SIGTERM landing just before the child blocks in C (a Pool worker
    going back to wait on its task queue's lock when `Pool.terminate()` signals it) was caught and
    never acted on, and the worker, hence `terminate()`, hung for good."""
    global _term_handler
    if _term_handler is None:  # the first run in this process
        os.register_at_fork(after_in_child=_default_term_in_child)
    _term_handler = handler


def _default_term_in_child() -> None:
    if _term_handler is not None and signal.getsignal(signal.SIGTERM) is _term_handler:
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        except (ValueError, OSError):  # pragma: no cover - not the main thread: keep the handler's fallback
            pass


def _trim_traceback(tb: Any, script: str) -> Any:
    """Drop llmtrace's and runpy's frames so the traceback starts in the user's script, as under python."""
    first = tb
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename == script:
            return tb
        if code.co_name == "_run_module_as_main" and "runpy" in code.co_filename:
            return tb  # `-m`: python's traceback starts at runpy's frames
        tb = tb.tb_next
    return first


def _exec_main(script: str) -> None:
    """Run the file as `__main__`, as python does: __file__ is the script's path, __spec__ None,
    sys.argv untouched (runpy.run_path would put the joined path into sys.argv[0])."""
    with open(script, "rb") as f:
        source = f.read()
    checked = _checked
    if checked is not None and checked[0] == script and checked[1] == source:
        code = checked[2]  # the same file as checked, unchanged since: not compiled a second time
    else:
        code = compile(source, script, "exec", dont_inherit=True)
    module = types.ModuleType("__main__")
    module.__dict__.update(
        __file__=script, __cached__=None, __package__=None, __spec__=None, __builtins__=builtins,
        __loader__=importlib.machinery.SourceFileLoader("__main__", script),
    )
    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = module
    try:
        _on_fresh_stack(exec, code, module.__dict__)
    finally:
        if saved is not None:
            sys.modules["__main__"] = saved


def _run_module(name: str) -> None:
    """Run module `name` as `__main__` through runpy, as `python -m` does: sys.argv[0] becomes its file,
    a package runs its __main__, and a module that cannot be found ends the run as python ends it."""
    import runpy

    module = types.ModuleType("__main__")
    module.__dict__["__builtins__"] = builtins
    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = module  # runpy runs the code in the globals of sys.modules["__main__"]
    try:
        _on_fresh_stack(runpy._run_module_as_main, name, True)  # type: ignore[attr-defined]
    finally:
        if saved is not None:
            sys.modules["__main__"] = saved


def _call(call: Any, *args: Any) -> Any:
    return call(*args)


def _stack_fillers() -> tuple[Any, Any] | None:
    """Two copies of `_call` whose frames, one after the other, fill a 32 KiB frame-stack chunk.

    From 3.11, CPython keeps frames on a stack of 16 KiB chunks, and frees a chunk as soon as the
    frame that opened it returns: a hot call that crosses a chunk's end maps and unmaps 16 KiB on
    each call. Where the script's frames sit decides which calls cross, and under python its module
    frame opens the first chunk. Run below llmtrace's own frames, the chunk ends fell elsewhere:
    importing LangChain and openai mapped and unmapped a chunk about 24,000 times instead of 5,200
    (0.1-0.3 s of start-up, most of it in the kernel). Called through these, the script's module
    frame opens a fresh chunk, as under python, whatever the depth llmtrace calls it from.

    Sizes are in pointers (CPython's pystate.c and pycore_frame.h, 3.11-3.13): a chunk is 16 KiB
    unless the frame opening it needs more than 2,048 - 1,000 slots, with a 3-slot header; a frame
    takes 9 slots, its locals and its value stack. The first filler (3,000) never fits what is left
    of a 16 KiB chunk, so it opens a 32 KiB one (4,093 slots); the second takes all of it but one.
    Elsewhere: None, and the script is called directly."""
    if sys.implementation.name != "cpython" or not (3, 11) <= sys.version_info[:2] <= (3, 13):
        return None
    code = _call.__code__
    base = 9 + len(code.co_varnames) + len(code.co_cellvars) + len(code.co_freevars)
    first, second = 3000, 4093 - 3000 - 1
    return tuple(  # type: ignore[return-value]
        types.FunctionType(code.replace(co_stacksize=size - base, co_name="_exec_main"), _call.__globals__)
        for size in (first, second)
    )


_FILLERS = _stack_fillers()


def _on_fresh_stack(call: Any, *args: Any) -> Any:
    if _FILLERS is None:
        return call(*args)
    return _FILLERS[0](_FILLERS[1], call, *args)


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


def run(opts: RunOptions, writer: Any, *, extra_env: dict[str, str] | None = None,
        report: Callable[[Trace], None] | None = None, module: str | None = None) -> tuple[Trace, int]:
    """Run the script under a new trace. Returns the finished trace and the exit status to use: a
    negative status -N means the script died of signal N and this process must too (`die_of`).

    `report(trace)` is called once the trace is finished (the run summary). The caller has checked
    the script with `check_script` (before opening the store, so that a missing script is reported
    as such whatever state the store is in). `module`: run the module of that name as `python -m` does
    (opts.script is its name; the caller has found it with `find_module`).
    """
    from llmtrace.ids import new_trace_id

    script = find_module(module) if module else script_path(opts.script)
    trace = Trace(
        id=opts.trace_id or new_trace_id(),
        name=opts.name or (module if module else Path(opts.script).name),
        start_us=now_us(),
        script=os.path.abspath(script),
        argv=[script if module else opts.script, *opts.args],
        cwd=os.getcwd(),
        pid=os.getpid(),
        version=VERSION,
        tags=dict(opts.tags),
    )
    if opts.split:
        trace.run_id = trace.id
    for k, v in (extra_env or {}).items():
        os.environ[k] = v
    os.environ["LLMTRACE_TRACE_ID"] = trace.id
    session = Session(opts, writer, trace).start()

    if module:
        sys.argv = ["-m", *opts.args]  # as python has it while it looks for the module; runpy sets argv[0]
        sys.path[0] = os.getcwd()
    else:
        sys.argv = [opts.script, *opts.args]
        sys.path[0] = os.path.dirname(os.path.realpath(script))  # as python: symbolic links resolved
    finished = threading.Event()

    def finish(status: str, code: int, error: str | None, stack: str | None = None) -> None:
        if finished.is_set():
            return
        finished.set()
        with _signals_ignored():
            session.finish(status, code, error, stack)
            if report is not None:
                try:
                    sys.stdout.flush()
                except Exception:
                    pass
                report(trace)

    term_during_finish: list[int] = []

    def on_term(signum: int, frame: Any) -> None:
        # SIGTERM's default action ends the script where it stands (no finally blocks run); the
        # trace is finished first, then the process dies of the same signal.
        if os.getpid() != trace.pid:  # a fork child (a Pool worker being terminated): the default action
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        if finished.is_set():  # the script is over and the trace being finished: die right after
            term_during_finish.append(signum)
            return
        finish(Status.INTERRUPTED.value, int(ExitCode.TERMINATED), "terminated (SIGTERM)")
        die_of(signal.SIGTERM)

    old_term = None
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        old_term = signal.signal(signal.SIGTERM, on_term)
        _ours_in_parent_only(on_term)

    hook_before = sys.excepthook
    status, code, error, stack = Status.OK.value, 0, None, None
    real_exec = _exec_as_child(finish)
    try:
        if module:
            _run_module(module)
        else:
            _exec_main(script)
        _wait_for_threads()
    except SystemExit as e:
        code, error = _exit_code(e.code)
        status = Status.OK.value if code == 0 else Status.ERROR.value
    except KeyboardInterrupt as e:
        _print_exception(e, script, hook_before)
        status, code, error = Status.INTERRUPTED.value, -int(signal.SIGINT), "KeyboardInterrupt"
    except BaseException as e:
        _print_exception(e, script, hook_before)
        status, code = Status.ERROR.value, int(ExitCode.ERROR)
        error = f"{type(e).__name__}: {e}"[:2000]
        stack = stack_text(e, _trim_traceback(e.__traceback__, script), limit=16_000)
    finally:
        os.execv, os.execve = real_exec
        try:
            sys.stdout.flush()
        except Exception:
            pass
    finish(status, 128 - code if code < 0 else code, error, stack)
    if old_term is not None and signal.getsignal(signal.SIGTERM) == on_term:
        signal.signal(signal.SIGTERM, old_term)
    if term_during_finish:
        die_of(signal.SIGTERM)
    return trace, code


def _exec_as_child(finish: Callable[..., None]) -> tuple[Any, Any]:
    """While the script runs, an `os.exec*` of it (jupyter's `jupyter nbconvert` exec's `jupyter-nbconvert`)
    starts the program as a child instead and waits for it: it joins the trace as any child process does,
    then the trace is finished with its exit status and this process ends with that status, as the
    exec'd program would have ended it (no finally block or atexit handler of the script runs, as after
    an exec). A real exec would replace the process with the trace still running, and its calls would
    never reach it. Returns the real os.execv and os.execve (every exec* function goes through them)."""
    real = (os.execv, os.execve)

    def instead(path: Any, args: Any, env: Any = None) -> None:
        import subprocess

        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        argv = [os.fsdecode(a) for a in args]
        # Inherits what an exec keeps: descriptors marked inheritable, the working directory, signals' defaults.
        child = subprocess.Popen(argv, executable=path, env=env, close_fds=False)
        while True:
            try:
                code = child.wait()
                break
            except KeyboardInterrupt:  # Ctrl-C reached the child too: its status says what it did
                continue
        if code < 0:
            finish(Status.INTERRUPTED.value, 128 - code, f"{argv[0]} ended by signal {-code}")
            die_of(-code)
        finish(Status.OK.value if code == 0 else Status.ERROR.value, code,
               f"{argv[0]} exited with status {code}" if code else None)
        os._exit(code)

    os.execv = lambda path, args: instead(path, args)  # type: ignore[assignment]
    os.execve = lambda path, args, env: instead(path, args, env)  # type: ignore[assignment]
    return real


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
