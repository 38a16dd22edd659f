"""Help pages a person can read: each value shown as what to write (`TRACE`, `KEY=VALUE`, `DURATION`),
never as a type (`<str>`, `<list[str]>`) or in typer's braces (`{SCRIPT}`), on every typer release."""

from __future__ import annotations

from typing import Any

# By parameter name, for every command (an explicit metavar= in a definition wins).
BY_NAME = {
    "trace": "TRACE", "traces": "TRACE", "file": "FILE", "tags": "KEY=VALUE", "args": "ARGS", "script": "FILE",
    "mock_script": "FILE", "output": "FILE", "name": "NAME", "tag": "KEY=VALUE", "remove": "KEY", "since": "WHEN",
    "until": "WHEN", "status": "STATUS", "error": "TEXT", "grep": "WORDS", "model": "MODEL", "min_score": "SCORE",
    "max_score": "SCORE", "score": "SCORE", "min_cost": "USD", "max_cost": "USD", "min_duration": "DURATION",
    "limit": "N", "steps": "N", "span": "SPAN", "by": "GROUP", "context": "N", "comment": "TEXT",
    "older_than": "AGE", "format": "FORMAT", "otlp": "URL", "project": "NAME", "port": "PORT",
    "latency_ms": "MS", "faults": "STATUSES", "cache_dir": "DIR",
}
_BY_TYPE = {"int": "N", "float": "NUMBER", "path": "PATH"}


def _fallback(param: Any) -> str:
    kind = str(getattr(getattr(param, "type", None), "name", "") or "").lower()
    for word, metavar in _BY_TYPE.items():
        if word in kind:
            return metavar
    return "TEXT"


def name_values(params: list[Any]) -> None:
    """Give every parameter without a metavar one, and arguments a help line naming it."""
    for p in params:
        if getattr(p, "metavar", None) is not None:
            pass
        elif p.param_type_name == "argument":
            p.metavar = BY_NAME.get(p.name or "", (p.name or "").upper())
        elif p.param_type_name == "option" and not getattr(p, "is_flag", False) and not getattr(p, "count", False):
            p.metavar = BY_NAME.get(p.name or "") or _fallback(p)
        if p.param_type_name == "argument":
            p.get_help_record = _argument_record(p)


def _argument_record(param: Any) -> Any:
    original = param.get_help_record

    def record(ctx: Any) -> Any:
        rv = original(ctx)
        if rv is None:
            return None
        return param.metavar + ("..." if param.nargs != 1 else ""), rv[1]

    return record


def usage_pieces(command: Any, ctx: Any) -> list[str]:
    """`[OPTIONS] SCRIPT [ARGS]...`: required arguments bare, optional ones in brackets."""
    out = [command.options_metavar] if command.options_metavar else []
    for p in command.get_params(ctx):
        if p.param_type_name != "argument":
            continue
        text = p.metavar + ("..." if p.nargs != 1 else "")
        out.append(text if p.required else f"[{text}]")
    return out
