"""The IPython extension (`%load_ext llmtrace`): each notebook cell that calls an LLM, a tool or a chain
is a trace of its own, stored when the cell ends and shown under the cell's output.

One session for the whole kernel, with a splitter that makes a trace per cell (core/split.py
`GroupedTraces`), rather than a session per cell: a session opens the cache, the in-flight publisher
and the capture hooks, which a cell that makes no call should not pay for, and a session per cell
would write a trace row for every cell. Here a cell costs two event callbacks; its trace is written
when its first span starts (a cell that makes no call leaves nothing) and finished when the cell
ends. Spans go straight to SQLite, so the trace is complete in the store as the cell ends: `llmtrace
ls` in a terminal sees it while the kernel lives, and the display under the cell is read back from it.
The cache counts requests for the kernel's whole life, as `llmtrace run` does for a script: the same
notebook run again in a fresh kernel is answered from the cache.

    %llmtrace                 status
    %llmtrace off | on | quiet   stop tracing / trace and show / trace without showing
    %llmtrace view [TRACE]    the full `view` page of a trace inline (default: the last cell's)
    %%llmtrace [--name NAME] [--tag K=V]… [--view] [--quiet]   trace this cell, with these options

A kernel that is already traced (started by `llmtrace run NOTEBOOK.ipynb`, or under `llmtrace run`)
records into that trace: the extension then adds nothing.
"""

from __future__ import annotations

import atexit
import os
import shlex
import sys
from pathlib import Path
from typing import Any

_ext: "Extension | None" = None


def load(ipython: Any) -> None:
    global _ext
    if _ext is not None:
        return
    _ext = Extension(ipython)
    _ext.register()


def unload(ipython: Any) -> None:
    global _ext
    if _ext is None:
        return
    _ext.unregister()
    _ext = None


def notebook_name(ipython: Any) -> str:
    """The notebook's file name where the front end tells it (JupyterLab and Notebook 7 set
    JPY_SESSION_NAME; VS Code sets __vsc_ipynb_file__), else "notebook"."""
    for value in (os.environ.get("JPY_SESSION_NAME"), (getattr(ipython, "user_ns", None) or {}).get("__vsc_ipynb_file__")):
        if isinstance(value, str) and value.strip():
            return Path(value).name
    return "notebook"


class Extension:
    def __init__(self, ipython: Any):
        self.ip = ipython
        self.mode = "on"  # "on", "quiet" or "off"
        self.session: Any = None
        self.group: Any = None  # the cell being run
        self.cell_options: dict[str, Any] | None = None  # set by %%llmtrace for the cell it runs
        self.last: str | None = None  # the last cell trace's id
        self.name = notebook_name(ipython)
        self.borrowed = False  # the kernel is traced by someone else (llmtrace run): add nothing
        # `llmtrace run --split NOTEBOOK.ipynb` started this kernel: each cell is a trace of that run
        self.run_spec: dict[str, Any] | None = _run_spec()
        self.inner = False  # %%llmtrace is running its cell (IPython sends that one's events too)

    # -- lifecycle ----------------------------------------------------------------------------------
    def register(self) -> None:
        from llmtrace.core import session as core

        self.borrowed = core.active() is not None
        self.ip.events.register("pre_run_cell", self.pre_run_cell)
        self.ip.events.register("post_run_cell", self.post_run_cell)
        self.ip.register_magic_function(self.line_magic, "line", "llmtrace")
        self.ip.register_magic_function(self.cell_magic, "cell", "llmtrace")
        atexit.register(self.stop)

    def unregister(self) -> None:
        for event, callback in (("pre_run_cell", self.pre_run_cell), ("post_run_cell", self.post_run_cell)):
            try:
                self.ip.events.unregister(event, callback)
            except ValueError:
                pass
        self.stop()
        magics = self.ip.magics_manager.magics
        for kind in ("line", "cell"):
            magics[kind].pop("llmtrace", None)

    def start(self) -> Any:
        """The kernel's session, started at the first cell that needs it (loading the extension opens
        nothing)."""
        if self.session is not None or self.borrowed:
            return self.session
        from llmtrace.model import VERSION
        from llmtrace.core.options import RunOptions
        from llmtrace.core.recorder import now_us
        from llmtrace.core.session import Session
        from llmtrace.core.split import GroupedTraces
        from llmtrace.ids import new_trace_id
        from llmtrace.model import Trace
        from llmtrace.redact import Redactor
        from llmtrace.store import open_store
        from llmtrace.store.writer import StoreWriter

        trace = Trace(id=new_trace_id(), name=self.name, start_us=now_us(), script=None, argv=list(sys.argv),
                      cwd=os.getcwd(), pid=os.getpid(), version=VERSION, tags={"notebook": self.name})
        trace.run_id = trace.id
        # Child processes are left untraced: their spans would join the kernel's record, not the cell's.
        opts = RunOptions(script=self.name, name=self.name, children=False)
        if self.run_spec is not None:
            options = dict(self.run_spec.get("options") or {})
            options["cache_dir"] = Path(options["cache_dir"]) if options.get("cache_dir") else None
            opts = RunOptions(script=self.name, name=self.name, children=False, **options)
        writer = StoreWriter(open_store(), Redactor.from_environ())
        session = Session(opts, writer, trace)
        session.make_splitter, session.record_lazily, session.direct = GroupedTraces, True, True
        try:
            self.session = session.start()
        except BaseException:
            writer.close()
            raise
        return self.session

    def stop(self) -> None:
        session, self.session = self.session, None
        if session is None:
            return
        try:
            if self.group is not None:
                session.splitter.close(self.group, "interrupted", "the kernel stopped tracing mid-cell")
                self.group = None
            session.finish()
        finally:
            session.writer.close()

    # -- cells --------------------------------------------------------------------------------------
    def pre_run_cell(self, info: Any) -> None:
        if self.mode == "off" or self.borrowed or self.group is not None:
            return  # (a cell run by %%llmtrace, inside its own cell: that one's group holds it)
        if getattr(info, "silent", False) or not getattr(info, "store_history", True):
            return
        self._open_group(self._cell_number())

    def _cell_number(self) -> Any:
        """The number the front end shows for the cell about to run (In [n]): the inputs kept so far
        count it (IPython moves `execution_count` on before or after this event, by version)."""
        try:
            return len(self.ip.history_manager.input_hist_raw)
        except Exception:
            return getattr(self.ip, "execution_count", None)

    def _open_group(self, count: Any, name: str | None = None, tags: dict[str, str] | None = None) -> None:
        from llmtrace.core.split import Group

        try:
            session = self.start()
        except Exception as e:
            self.mode = "off"
            print(f"llmtrace: warning: not tracing this notebook ({type(e).__name__}: {e})", file=sys.stderr)
            return
        label = f"cell {count}" if count is not None else "cell"
        spec = self.run_spec or {}
        group = Group(name or f"{self.name} · {label}",
                      {**(spec.get("tags") or {}), "notebook": self.name, "cell": str(count or ""), **(tags or {})},
                      run_id=spec.get("run_id"))
        session.splitter.current = self.group = group

    def post_run_cell(self, result: Any) -> None:
        if self.inner:
            return
        try:
            self._end_cell(result)
        finally:
            if self.mode == "off":  # a %%llmtrace cell while off: nothing stays captured after it
                self.stop()

    def _end_cell(self, result: Any) -> None:
        group, self.group = self.group, None
        options, self.cell_options = self.cell_options or {}, None
        if group is None or self.session is None:
            return
        error = options.get("error") or getattr(result, "error_in_exec", None) or getattr(result, "error_before_exec", None)
        status, text, stack = "ok", None, None
        if error is not None:
            from llmtrace.core.recorder import stack_text

            status = "interrupted" if isinstance(error, KeyboardInterrupt) else "error"
            text = f"{type(error).__name__}: {error}"[:2000]
            stack = None if status == "interrupted" else stack_text(error, _from_the_cell(error.__traceback__), 16_000)
        trace = self.session.splitter.close(group, status, text, stack)
        if trace is None:
            return
        self.last = trace.id
        quiet = options.get("quiet", self.mode == "quiet")
        if not quiet:
            from IPython.display import display

            from llmtrace.notebook.display import TraceOutput

            display(TraceOutput(trace.id, view="open" if options.get("view") else "closed"))

    # -- magics ---------------------------------------------------------------------------------------
    def line_magic(self, line: str) -> Any:
        """%llmtrace [on | off | quiet | view [TRACE]]"""
        words = line.split()
        if not words:
            state = "borrowed (the kernel is traced by llmtrace run)" if self.borrowed else self.mode
            print(f"llmtrace: {state}; last cell trace: {self.last[:8] if self.last else 'none'}")
            return None
        command = words[0]
        if command in ("on", "quiet"):
            self.mode = command
        elif command == "off":
            self.mode = "off"
            self.stop()  # nothing captured, cached or retried until `on`
        elif command == "view":
            return self._view(words[1] if len(words) > 1 else None)
        else:
            print(f"llmtrace: unknown {command!r}: use on, off, quiet or view [TRACE]", file=sys.stderr)
        return None

    def _view(self, ref: str | None) -> Any:
        from llmtrace.errors import UserError
        from llmtrace.notebook.display import TraceOutput

        if ref is None and self.last is None:
            print("llmtrace: no cell has been traced yet: give a trace id", file=sys.stderr)
            return None
        trace_id = self.last
        if ref is not None:
            from llmtrace.store import open_store
            from llmtrace.store.queries import resolve_trace_id

            db = open_store(write=False)
            try:
                trace_id = resolve_trace_id(db, ref)
            except UserError as e:
                print(f"llmtrace: {e}", file=sys.stderr)
                return None
            finally:
                db.close()
        return TraceOutput(trace_id, view="open")

    def cell_magic(self, line: str, cell: str) -> None:
        """%%llmtrace [--name NAME] [--tag K=V]… [--view] [--quiet]: trace this cell, even when off."""
        try:
            options = _cell_options(line)
        except ValueError as e:
            print(f"llmtrace: {e}", file=sys.stderr)
            return
        count = self._cell_number() - 1  # this cell's input is kept by now
        if self.group is None and not self.borrowed:  # off, or quiet: this cell is traced anyway
            self._open_group(count)
        if self.group is not None:
            if options.get("name"):
                self.group.name = options["name"]
            self.group.tags.update(options.get("tags", {}))
        self.inner = True
        try:
            result = self.ip.run_cell(cell, store_history=False)
        finally:
            self.inner = False
        # shown unless --quiet, even in quiet mode: the cell asked for it
        self.cell_options = {"quiet": False, **options, "error": getattr(result, "error_in_exec", None)}


def _run_spec() -> dict[str, Any] | None:
    import json

    from llmtrace.notebook.run import ENV

    raw = os.environ.get(ENV)
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _from_the_cell(tb: Any) -> Any:
    """The traceback from the cell's own code on, as IPython shows it (its frames running the cell left out)."""
    import IPython

    ours = os.path.dirname(IPython.__file__)
    first = tb
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(ours):
        tb = tb.tb_next
    return tb or first


def _cell_options(line: str) -> dict[str, Any]:
    words = shlex.split(line)
    out: dict[str, Any] = {"tags": {}}
    i = 0
    while i < len(words):
        word = words[i]
        if word in ("--view", "--quiet"):
            out[word[2:]] = True
        elif word in ("--name", "--tag") and i + 1 < len(words):
            i += 1
            if word == "--name":
                out["name"] = words[i]
            else:
                key, sep, value = words[i].partition("=")
                if not sep or not key.strip():
                    raise ValueError(f"bad tag {words[i]!r}: expected key=value")
                out["tags"][key.strip()] = value.strip()
        else:
            raise ValueError(f"unknown option {word!r}: use --name NAME, --tag K=V, --view, --quiet")
        i += 1
    return out
