"""Run a function right after a module is first imported, without importing it ourselves.

llmtrace patches openai and registers its LangChain callback the moment the script imports them,
so a run (or a child process) that never uses them pays nothing for them.

How: a path hook (`sys.path_hooks`), not a meta-path finder. A meta-path finder is asked about every
import the program makes, a Python call and an import-lock round each: ~10,000 instructions an
import, ~13 M over the ~1,300 modules a LangChain script imports. A path hook is asked once for each
new directory modules are found in; the finder it makes for a directory named like the package of a
watched module (`openai/`, `anthropic/`, `langchain_core/tracers/`) is wrapped, so only imports from
such directories pass through code of ours.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any, Callable

_waiting: dict[str, list[Callable[[Any], None]]] = {}
_dirs: set[str] = set()  # the last name of each watched module's package: its directory's name
_lock = threading.Lock()
_hooked = False


def _notify_after_exec(spec: Any, name: str) -> None:
    loader = spec.loader
    exec_module = getattr(loader, "exec_module", None)
    if exec_module is None:
        return

    def run_then_notify(module: Any) -> None:
        exec_module(module)
        with _lock:
            callbacks = _waiting.pop(name, [])
        for callback in callbacks:
            try:
                callback(module)
            except Exception:  # a hook must never break the user's import
                pass

    loader.exec_module = run_then_notify  # this loader object belongs to this one spec


def _watch(finder: Any) -> None:
    """Make `finder` (a directory's path-entry finder) tell us when it finds a watched module."""
    find = getattr(finder, "find_spec", None)
    if find is None or getattr(find, "_llmtrace_watch", False):
        return

    def find_spec(fullname: str, target: Any = None) -> Any:
        spec = find(fullname, target)
        if spec is not None and fullname in _waiting:
            _notify_after_exec(spec, fullname)
        return spec

    find_spec._llmtrace_watch = True  # type: ignore[attr-defined]
    try:
        finder.find_spec = find_spec
    except (AttributeError, TypeError):  # a finder that takes no attributes: left as it is
        pass


def _path_hook(path: str) -> Any:
    """The finder the other path hooks make for `path`, watched when its directory may hold a watched module."""
    for hook in sys.path_hooks:
        if hook is _path_hook:
            continue
        try:
            finder = hook(path)
        except ImportError:
            continue
        if os.path.basename(path) in _dirs:
            _watch(finder)
        return finder
    raise ImportError("no path hook found for " + path, path=path)


def when_imported(name: str, callback: Callable[[Any], None]) -> None:
    """Call `callback(module)` once `name` (a module inside a package) is imported: now if it already is."""
    global _hooked
    module = sys.modules.get(name)
    if module is not None:
        callback(module)
        return
    package = name.rpartition(".")[0].rpartition(".")[2]
    with _lock:
        _waiting.setdefault(name, []).append(callback)
        _dirs.add(package)
        if not _hooked:
            _hooked = True
            sys.path_hooks.insert(0, _path_hook)
    # Directories already seen (their finders made before the hook was in place).
    for path, finder in list(sys.path_importer_cache.items()):
        if finder is not None and os.path.basename(path) == package:
            _watch(finder)
