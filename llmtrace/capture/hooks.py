"""Run a function right after a module is first imported, without importing it ourselves.

llmtrace patches openai and registers its LangChain callback the moment the script imports them,
so a run (or a child process) that never uses them pays nothing for them.
"""

from __future__ import annotations

import importlib.abc
import sys
import threading
from typing import Any, Callable

_waiting: dict[str, list[Callable[[Any], None]]] = {}
_lock = threading.Lock()
_finder: "_Finder | None" = None


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name not in _waiting:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        exec_module = getattr(loader, "exec_module", None)
        if exec_module is None:
            return spec

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
        return spec


def when_imported(name: str, callback: Callable[[Any], None]) -> None:
    """Call `callback(module)` once `name` is imported: now if it already is."""
    global _finder
    module = sys.modules.get(name)
    if module is not None:
        callback(module)
        return
    with _lock:
        _waiting.setdefault(name, []).append(callback)
        if _finder is None:
            _finder = _Finder()
            sys.meta_path.insert(0, _finder)
