"""`llmtrace run NOTEBOOK.ipynb`: the notebook executed top to bottom in a fresh kernel (nbclient), every
call traced, with a script's summary and exit status (1, with the failing cell's traceback).

One trace: the kernel is a child process of the run, and joins its trace as any Python child does
(core/children.py). With --split, one trace per cell: the kernel loads the IPython extension, which
makes each calling cell a trace of the run (sharing its id, as `run --split` does for invocations).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable

from llmtrace.errors import ExitCode, UserError

INSTALL_HINT = "running a notebook needs the notebook extra: pip install 'llmtrace-local[notebook]' (nbclient, ipykernel, nbformat)"
ENV = "LLMTRACE_NOTEBOOK_RUN"  # for the kernel of a --split run: the run it records into (see notebook/__init__.py)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def check_notebook(arg: str) -> Any:
    """The notebook, read and validated; a one-line UserError for anything else."""
    path = Path(arg)
    if not path.exists():
        raise UserError(f"no such notebook: {path}", ExitCode.SCRIPT)
    try:
        import nbclient  # noqa: F401
        import nbformat
    except ImportError:
        raise UserError(INSTALL_HINT) from None
    try:
        return nbformat.read(str(path), as_version=4)
    except Exception as e:
        raise UserError(f"{path} is not a notebook nbformat can read ({type(e).__name__})", ExitCode.SCRIPT) from None


def run_notebook(opts: Any, writer: Any, notebook: Any, output: Path | None, *, extra_env: dict[str, str] | None = None,
                 report: Callable[[Any], None] | None = None) -> tuple[Any, int]:
    """Execute `notebook` under a new trace (or, with opts.split, a trace per cell); write the executed
    notebook to `output` when given. Returns the finished trace and the exit status."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, DeadKernelError

    from llmtrace.model import VERSION
    from llmtrace.core.recorder import now_us
    from llmtrace.core.session import Session
    from llmtrace.ids import new_trace_id
    from llmtrace.model import Status, Trace

    path = os.path.abspath(opts.script)
    trace = Trace(id=opts.trace_id or new_trace_id(), name=opts.name or Path(opts.script).name, start_us=now_us(),
                  script=path, argv=[opts.script, *opts.args], cwd=os.getcwd(), pid=os.getpid(), version=VERSION,
                  tags=dict(opts.tags))
    saved = {k: os.environ.get(k) for k in [*(extra_env or {}), "JPY_SESSION_NAME", ENV, "LLMTRACE_TRACE_ID"]}
    os.environ.update(extra_env or {})
    os.environ["JPY_SESSION_NAME"] = path  # the kernel names its cells' traces after the notebook
    os.environ["LLMTRACE_TRACE_ID"] = trace.id
    extra_arguments: list[str] = []
    if opts.split:
        trace.run_id = trace.id
        opts.children = False  # the kernel records each cell itself, through the extension
        from llmtrace.core.children import options_for_children

        os.environ[ENV] = json.dumps({"run_id": trace.id, "tags": opts.tags, "options": options_for_children(opts)})
        extra_arguments = ["--InteractiveShellApp.extensions=['llmtrace']"]
    else:
        opts.children = True  # the kernel is a child process: --no-children would leave every cell untraced
    session = Session(opts, writer, trace).start()
    kernel = (notebook.metadata.get("kernelspec") or {}).get("name") or "python3"
    client = NotebookClient(notebook, kernel_name=kernel, timeout=None, allow_errors=False,
                            resources={"metadata": {"path": os.path.dirname(path)}}, extra_arguments=extra_arguments)
    status, code, error, stack = Status.OK.value, 0, None, None
    try:
        client.execute()
    except CellExecutionError as e:
        text = _ANSI.sub("", str(e))
        sys.stderr.write(text.rstrip("\n") + "\n")
        status, code = Status.ERROR.value, int(ExitCode.ERROR)
        error = f"{getattr(e, 'ename', 'Error')}: {getattr(e, 'evalue', '')}"[:2000]
        stack = text[-16_000:]
    except DeadKernelError as e:
        print(f"llmtrace: the kernel died: {e}", file=sys.stderr)
        status, code, error = Status.ERROR.value, int(ExitCode.ERROR), f"the kernel died: {e}"[:2000]
    except KeyboardInterrupt:
        status, code, error = Status.INTERRUPTED.value, 130, "KeyboardInterrupt"
    except Exception as e:  # the kernel could not start (no such kernelspec, …): the user's to fix
        status, code, error = Status.ERROR.value, int(ExitCode.ERROR), f"{type(e).__name__}: {e}"[:2000]
        print(f"llmtrace: cannot run {opts.script}: {error}", file=sys.stderr)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    if output is not None:
        _write(notebook, output)
    session.finish(status, code, error, stack)
    if report is not None:
        report(trace)
    return trace, code


def _write(notebook: Any, output: Path) -> None:
    import nbformat

    try:  # it holds the prompts and answers the cells printed: owner-only, like the store
        fd = os.open(output, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            nbformat.write(notebook, f)
    except OSError as e:
        print(f"llmtrace: cannot write {output}: {e.strerror}", file=sys.stderr)
