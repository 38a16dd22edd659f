"""The Python API: `llmtrace.trace()` and `llmtrace.enable()`, a door onto the tracing core for programs
that cannot be started as `llmtrace run script.py` (a web server, a job runner, a test, a notebook).

    import llmtrace

    with llmtrace.trace("nightly eval", tags={"team": "core"}) as t:
        agent.invoke(...)
    print(t.id, t.status, t.totals.cost)

    @llmtrace.trace            # each call is a trace (async functions too)
    def answer(question): ...

Everything called inside is one trace in the usual store, with `llmtrace run`'s capture, record/replay
cache and retries (`cache=False`, `retries=0`, … change them). A `trace()` inside another, or inside a
script run by `llmtrace run`, is a span of the running trace: nothing is traced twice. An exception
ends the trace as an error, with its traceback, and goes on up unchanged.

Concurrency: one trace is recorded at a time in a process (the capture hooks are process-wide). A
`trace()` entered in another thread or asyncio task while one runs becomes a span of that trace (its
calls hang under it, not under the other task's), and the trace is finished when the last block that
shares it ends, so no block cuts another's recording short. For one trace per concurrent request,
run the program under `llmtrace run --split`.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

__all__ = ["TraceHandle", "disable", "enable", "trace"]

_lock = threading.Lock()
_sharing: dict[int, int] = {}  # id(top-level session) → how many trace() blocks use it now
_deferred: dict[int, tuple[Any, tuple[Any, ...]]] = {}  # its owner ended first: (its handle, finish args)


@dataclass
class TraceHandle:
    """What `with llmtrace.trace() as t` gives: the trace's id at once; its status, error and totals
    (tokens, cost, calls: a model.Totals) once it has ended. `nested` when the block was a span of a
    trace already running (then `id` is that trace's, and status and totals stay its own to give)."""

    id: str | None
    name: str
    nested: bool = False
    status: str = "running"
    error: str | None = None
    totals: Any = None
    trace: Any = field(default=None, repr=False)  # the finished model.Trace


class trace:  # noqa: N801 - used as a function and a decorator, like contextlib's
    """`with trace(name, ...)`, `async with trace(...)`, `@trace`, `@trace(name, ...)`.

    Options (the `llmtrace run` ones): tags (dict), cache, cache_mode ("replay" / "reuse"),
    cache_dir, retries, children (child processes join the trace), max_cost / max_calls /
    max_tokens (budgets), split (one trace per top-level invocation inside).
    """

    def __init__(self, name: str | Callable[..., Any] | None = None, *, tags: dict[str, str] | None = None,
                 cache: bool = True, cache_mode: str = "replay", cache_dir: str | os.PathLike[str] | None = None,
                 retries: int = 4, children: bool = True, max_cost: float | None = None,
                 max_calls: int | None = None, max_tokens: int | None = None, split: bool = False):
        self._func = None
        if callable(name):  # @trace without parentheses
            self._func, name = name, None
        if cache_mode not in ("replay", "reuse"):
            raise ValueError(f"cache_mode must be 'replay' or 'reuse', not {cache_mode!r}")
        self.name = name
        self.options = dict(tags={str(k): str(v) for k, v in (tags or {}).items()}, cache=cache,
                            cache_mode=cache_mode, cache_dir=Path(cache_dir) if cache_dir else None,
                            retries=int(retries), children=children, max_cost=max_cost, max_calls=max_calls,
                            max_tokens=max_tokens, split=split)
        self._session: Any = None
        self._handle: TraceHandle | None = None
        if self._func is not None:
            functools.update_wrapper(self, self._func)

    # -- decorator ----------------------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._func is None:  # @trace("name", ...) applied to a function
            (func,) = args
            return self._decorate(func)
        return self._decorate(self._func)(*args, **kwargs)

    def __get__(self, obj: Any, owner: Any = None) -> Any:  # @trace on a method
        if obj is None or self._func is None:
            return self
        return functools.partial(self.__call__, obj)

    def _fresh(self, func: Callable[..., Any]) -> "trace":
        t = trace(self.name or getattr(func, "__qualname__", None) or getattr(func, "__name__", "trace"))
        t.options = self.options
        return t

    def _decorate(self, func: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.iscoroutinefunction(func):
            @functools.wraps(func)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                async with self._fresh(func):
                    return await func(*args, **kwargs)

            return run_async

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            with self._fresh(func):
                return func(*args, **kwargs)

        return run

    # -- context manager ----------------------------------------------------------------------------
    def __enter__(self) -> TraceHandle:
        if self._handle is not None:
            raise RuntimeError("this trace() block is already in use: make one per `with`")
        name = self.name or _default_name()
        try:
            self._session, nested = _start(name, self.options)
        except Exception as e:  # tracing never stops the program: it runs untraced
            print(f"llmtrace: warning: not tracing {name!r} ({type(e).__name__}: {e})", file=sys.stderr)
            self._handle = TraceHandle(None, name, status="untraced")
            return self._handle
        self._handle = TraceHandle(self._session.trace.id, name, nested=nested)
        return self._handle

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        session, handle = self._session, self._handle
        if session is None or handle is None:
            return False
        self._session = None
        _end(session, handle, exc)
        return False  # the exception, if any, goes on unchanged

    async def __aenter__(self) -> TraceHandle:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        return self.__exit__(exc_type, exc, tb)


def _default_name() -> str:
    main = sys.argv[0] if sys.argv and sys.argv[0] not in ("", "-c") else ""
    return Path(main).name if main else "python"


def _start(name: str, options: dict[str, Any]) -> tuple[Any, bool]:
    from llmtrace.model import VERSION
    from llmtrace.core import session as core
    from llmtrace.core.options import RunOptions
    from llmtrace.core.recorder import now_us
    from llmtrace.ids import new_trace_id
    from llmtrace.model import Trace

    with _lock:
        outer = core.active()
        running = outer is not None and not outer.finished
        tags = options["tags"]
        trace = Trace(id=new_trace_id(), name=name, start_us=now_us(), tags=dict(tags))
        if running:  # a span of the running trace (the core nests it)
            session = core.Session(RunOptions(script=name, tags=dict(tags)), None, trace).start()
            top = _top(session)
            if id(top) in _sharing:
                _sharing[id(top)] += 1
            return session, True
        from llmtrace.redact import Redactor
        from llmtrace.store import open_store
        from llmtrace.store.writer import StoreWriter

        main = sys.argv[0] if sys.argv and sys.argv[0] not in ("", "-c") else None
        trace.script = os.path.abspath(main) if main else None
        trace.argv, trace.cwd, trace.pid, trace.version = list(sys.argv), os.getcwd(), os.getpid(), VERSION
        opts = RunOptions(script=main or name, args=list(sys.argv[1:]), name=name, **options)
        if opts.split:
            trace.run_id = trace.id
        writer = StoreWriter(open_store(), Redactor.from_environ())
        try:
            session = core.Session(opts, writer, trace).start()
        except BaseException:
            writer.close()
            raise
        _sharing[id(session)] = 1
        return session, False


def _top(session: Any) -> Any:
    while session.outer is not None:
        session = session.outer
    return session


def _end(session: Any, handle: TraceHandle, exc: BaseException | None) -> None:
    from llmtrace.core.recorder import stack_text
    from llmtrace.model import Status

    status, error, stack = Status.OK.value, None, None
    if exc is not None:
        import asyncio

        interrupted = isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError, GeneratorExit))
        status = Status.INTERRUPTED.value if interrupted else Status.ERROR.value
        error = f"{type(exc).__name__}: {exc}"[:2000]
        stack = None if interrupted else stack_text(exc, limit=16_000)
    if handle.nested:
        if exc is not None and session._span is not None:
            session._span.error_type = type(exc).__name__
            if stack:
                session._span.metadata["traceback"] = stack
        session.finish(status, 0, error, stack)
        handle.status, handle.error = status, error
        _release(_top(session))
        return
    handle.status, handle.error = status, error
    with _lock:
        if _sharing.get(id(session), 1) > 1:  # blocks in other threads or tasks still record into it
            _sharing[id(session)] -= 1
            _deferred[id(session)] = (handle, (status, 1 if status == Status.ERROR.value else 0, error, stack))
            return
        _sharing.pop(id(session), None)
    _finish(session, handle, (status, 1 if status == Status.ERROR.value else 0, error, stack))


def _release(top: Any) -> None:
    with _lock:
        if id(top) not in _sharing:
            return
        _sharing[id(top)] -= 1
        if _sharing[id(top)] > 0 or id(top) not in _deferred:
            return
        _sharing.pop(id(top))
        handle, args = _deferred.pop(id(top))
    _finish(top, handle, args)


def _finish(session: Any, handle: TraceHandle, args: tuple[Any, ...]) -> None:
    try:
        finished = session.finish(*args)
    finally:
        try:
            session.writer.close()
        except Exception:
            pass
    handle.trace, handle.status, handle.totals = finished, finished.status, finished.totals


# -- a whole process ----------------------------------------------------------------------------------
_enabled: trace | None = None
_enabled_handle: TraceHandle | None = None
_uncaught: list[BaseException] = []


def enable(name: str | None = None, **options: Any) -> TraceHandle:
    """Trace the rest of this process as one trace (the options are `trace()`'s), until `disable()` or
    the process exits. A second call returns the same trace."""
    global _enabled, _enabled_handle
    if _enabled is not None and _enabled_handle is not None:
        return _enabled_handle
    _enabled = trace(name, **options)
    _enabled_handle = _enabled.__enter__()
    if not _enabled_handle.nested:
        import atexit

        atexit.register(_at_exit)
        previous = sys.excepthook

        def hook(kind: Any, value: BaseException, tb: Any) -> None:  # an uncaught error ends the trace as one
            _uncaught.append(value)
            previous(kind, value, tb)

        sys.excepthook = hook
    return _enabled_handle


def disable() -> TraceHandle | None:
    """End the trace `enable()` started; returns its handle (None when tracing was not enabled)."""
    global _enabled, _enabled_handle
    current, handle = _enabled, _enabled_handle
    _enabled = _enabled_handle = None
    if current is None:
        return None
    error = _uncaught.pop() if _uncaught else None
    current.__exit__(type(error) if error else None, error, None)
    return handle


def _at_exit() -> None:
    try:
        disable()
    except Exception:
        pass
