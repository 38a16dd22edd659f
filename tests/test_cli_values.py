"""Plain option values converted without pydantic on typer ≥ 0.29 (llmtrace/cli/values.py): what the
fast converters answer is what typer's own adapters answer, and everything else is typer's to say."""

from __future__ import annotations

import math

import pytest
import typer.main

from conftest import skip_unless_ci

from llmtrace.cli.main import app
from llmtrace.cli.values import FastValue, converter

try:
    from typer._coercion import build_runtime_param
except ImportError:
    skip_unless_ci("typer < 0.29 converts through click (no typer._coercion)", module=True)


def _params() -> dict[str, object]:
    """Every typed parameter of every command, by 'command --option'."""
    out: dict[str, object] = {}

    def walk(cmd, path):
        for p in cmd.params:
            if getattr(p, "type_descriptor", None) is not None:
                out[f"{path} {p.name}".strip()] = p
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, f"{path} {name}".strip())

    walk(typer.main.get_command(app), "")
    return out


PARAMS = _params()
VALUES = [
    None, (), [], "", "x", "last", "a=b", "\udcff", "0", "1", "3", "-3", "20", "007", "+5", " 5", "5 ", "1_000",
    "1.5", "-0", "-0.0", ".5", "5.", "1e3", "nan", "inf", "-inf", "abc", "99999999999999999999999", "0.95",
    "19", "21", "-10", "-11", "10", "11", 0, 1, 20, -1, 0.5, 0.95, 1.5, float("nan"), True, False,
    ("a", "b"), ["x=y"], ("a", 1), b"bytes",
]
NAMES = [
    "ls limit", "ls min_cost", "ls min_score", "ls name", "ls tag", "ls as_json", "show steps",
    "show trace", "feedback score", "run retries", "run semantic_threshold", "run cache_size", "run args",
    "run mock_script", "mock port", "mock latency_ms", "export traces", "export output", "cache stats cache_dir",
]


def _outcome(runtime, value, param):
    try:
        got = runtime.coerce(value, param=param, ctx=None)
    except Exception as e:  # typer's BadParameter: its message is what the user sees
        return ("error", type(e).__name__, e.format_message() if hasattr(e, "format_message") else str(e))
    if isinstance(got, float) and math.isnan(got):
        return ("nan",)
    return ("value", type(got).__name__, repr(got))


def test_the_table_names_real_parameters():
    assert set(NAMES) <= set(PARAMS), set(NAMES) - set(PARAMS)


@pytest.mark.parametrize("name", NAMES)
def test_fast_values_agree_with_typer(name):
    param = PARAMS[name]
    fast = FastValue(converter(param.type_descriptor))
    for value in VALUES:
        if param.type_descriptor.annotation is bool and isinstance(value, bool):
            continue  # typer itself never converts a bool flag's bool
        if "Path" in repr(param.type_descriptor.annotation) and isinstance(value, str):
            continue  # a path is always typer's to convert (and it may look at the file)
        typer_side = build_runtime_param(param.type_descriptor)
        assert _outcome(fast, value, param) == _outcome(typer_side, value, param), (name, value)


def test_every_parameter_of_a_command_gets_one(llmtrace_home, capsys):
    """After a run of each command, its parameters (and the help option typer makes late) hold the fast
    converter, not typer's: no command's plain values reach pydantic."""
    command = typer.main.get_command(app)
    for argv in (["ls"], ["show", "--help"], ["cost"], ["cache", "stats", "--json"]):
        try:
            command.main(argv, prog_name="llmtrace", standalone_mode=False)
        except SystemExit:
            pass
    seen = []

    def walk(cmd):
        for p in [*cmd.params, getattr(cmd, "_help_option", None)]:
            if p is not None and getattr(p, "type_descriptor", None) is not None and p._runtime_param is not None:
                seen.append((cmd.name, p.name, type(p._runtime_param).__name__))
        for sub in getattr(cmd, "commands", {}).values():
            walk(sub)

    walk(command)
    assert seen and all(kind == "FastValue" for _, _, kind in seen), [s for s in seen if s[2] != "FastValue"]
