"""Option values of the `llmtrace` commands, converted without pydantic on typer 0.29 and later.

Typer 0.29 converts and checks every parameter of the command being run through a pydantic
TypeAdapter, built when the parameter is first parsed, even one left at its default (`ls --limit`'s 20).
Importing pydantic and building those adapters costs about 0.2 s of CPU on each command, more than a
read command's whole start-up budget (0.25 s). LangChain loads pydantic anyway, but only `run` loads LangChain.

llmtrace's parameters are plain: str, int and float (some with min / max), bool, Path and lists of str.
`fast_values` gives each such parameter of typer ≥ 0.29 a converter that answers the values that are
plainly valid (a str; an int or decimal number, also as text, within its range; a list of str) with what
typer's adapter answers for them (tests/test_cli_values.py compares the two), and hands every other value
to typer's own adapter, built then: a bad or out-of-range number, a path, a type llmtrace does not use.
So typer's messages and checks are kept as they are; only their cost moves to the commands that need them.

Typer before 0.29 converts through click's types, without pydantic: its parameters have no
`type_descriptor`, and nothing is changed.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable, get_args, get_origin

import typer.core

_MISS = object()
_INT = re.compile(r"-?[0-9]{1,18}")
_DECIMAL = re.compile(r"-?[0-9]{1,15}(?:\.[0-9]{1,15})?")

Converter = Callable[[Any], Any]


def _text(value: Any) -> Any:
    return value if type(value) is str else _MISS


def _number(kind: type, pattern: re.Pattern[str], low: float | None, high: float | None) -> Converter:
    def convert(value: Any) -> Any:
        if type(value) is int or (type(value) is kind and math.isfinite(value)):
            number = kind(value)
        elif type(value) is str and pattern.fullmatch(value):
            number = kind(value)
        else:
            return _MISS
        if (low is not None and number < low) or (high is not None and number > high):
            return _MISS  # typer's adapter says what is wrong, in its words
        return number

    return convert


def _flag(value: Any) -> Any:
    return value if type(value) is bool else _MISS


def _texts(value: Any) -> Any:
    if type(value) in (list, tuple) and all(type(v) is str for v in value):
        return list(value)
    return _MISS


def _typer_only(value: Any) -> Any:
    return _MISS


def converter(descriptor: Any) -> Converter:
    """The fast converter for a parameter of this typer type descriptor (one that leaves every value but
    None to typer for a path, a file, a choice, a parser, a clamp or any other type)."""
    info = descriptor.parameter_info
    if (descriptor.file_annotation is not None or getattr(info, "parser", None) is not None
            or getattr(info, "clamp", False) or descriptor.is_choice or descriptor.is_path):
        return _typer_only
    annotation = descriptor.annotation
    if annotation is bool:  # typer passes a bool straight through; an absent flag is None here
        return _flag
    if annotation is str:
        return _text
    if annotation is int:
        return _number(int, _INT, info.min, info.max)
    if annotation is float:
        return _number(float, _DECIMAL, info.min, info.max)
    if get_origin(annotation) is list and get_args(annotation) == (str,):
        return _texts
    return _typer_only


class FastValue:
    """Stands where typer keeps a parameter's converter (`_TyperParameter._runtime_param`), with its
    `coerce(value, param, ctx)`; the first value it cannot answer builds typer's own converter."""

    __slots__ = ("convert", "typer_converter")

    def __init__(self, convert: Converter) -> None:
        self.convert = convert
        self.typer_converter: Any = None

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        if value is None:  # as typer's RuntimeParam.coerce: absent is () for a multiple parameter
            return () if param.multiple or param.nargs == -1 else None
        out = self.convert(value)
        if out is not _MISS:
            return out
        if self.typer_converter is None:
            from typer._coercion import build_runtime_param

            self.typer_converter = build_runtime_param(param.type_descriptor)
        return self.typer_converter.coerce(value, param=param, ctx=ctx)


def fast_value(param: Any) -> bool:
    """Give `param` its fast converter if it is a typer ≥ 0.29 parameter of a plain type; whether it has one now."""
    current = getattr(param, "_runtime_param", _MISS)
    if isinstance(current, FastValue):
        return True
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is None or current is not None:
        return False  # typer < 0.29, or typer's converter already built
    param._runtime_param = FastValue(converter(descriptor))
    return True


class _FastParse:
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        # Each command when it is parsed: its parameters then include those typer adds late, the help
        # option (made on first use) and the root's --install-completion / --show-completion.
        for param in self.get_params(ctx):  # type: ignore[attr-defined]
            fast_value(param)
        return super().parse_args(ctx, args)  # type: ignore[misc]


class Group(_FastParse, typer.core.TyperGroup):
    """typer's group, its plain parameter values converted without pydantic (see above)."""


class Command(_FastParse, typer.core.TyperCommand):
    """typer's command, its plain parameter values converted without pydantic (see above), its help
    written with metavars a person would write (`llmtrace.cli.metavars`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from llmtrace.cli.metavars import name_values

        name_values(self.params)

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        from llmtrace.cli.metavars import usage_pieces

        return usage_pieces(self, ctx)


class Typer(typer.Typer):
    """typer.Typer making the groups and commands above (`cls=` given still wins)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", Group)
        super().__init__(**kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", Command)
        return super().command(*args, **kwargs)
