"""`llmtrace run`'s options in one table: flags, types, defaults, help, and where else each can be set.

Both parsers read this table (the fast path, `llmtrace.cli.fast_run`, and the typer command,
`llmtrace.cli.run`), so they cannot drift. Every option can also come from an environment variable
(`LLMTRACE_<OPTION>`) or a key of `[tool.llmtrace]` in the nearest `pyproject.toml` (searched upward from
the working directory): the command line wins over the environment, the environment over the file.
Tags and OTLP headers are merged key by key in that order.

Imported on every `llmtrace run`: nothing here imports typer, and TOML is parsed only when a
pyproject.toml is found.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from llmtrace.errors import UserError


@dataclass(frozen=True)
class RunOption:
    key: str  # start_run's keyword
    flags: tuple[str, ...]
    kind: str  # flag, int, float, str, path, list
    default: Any
    help: str
    metavar: str | None = None
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    env: tuple[str, ...] | None = None  # None: LLMTRACE_<KEY>; () none
    toml: bool | str = True  # False: not from the file; a str: its key there (else the flag's name)

    @property
    def envs(self) -> tuple[str, ...]:
        return ("LLMTRACE_" + self.key.upper(),) if self.env is None else self.env

    @property
    def toml_key(self) -> str:
        return self.toml if isinstance(self.toml, str) else self.flags[0].lstrip("-")


OPTIONS: tuple[RunOption, ...] = (
    RunOption("mock", ("--mock",), "flag", False, "Answer OpenAI, Anthropic, Ollama and Gemini calls from the built-in scripted server on 127.0.0.1 (offline, no API key). Replies come from SCRIPT.mock.json/.yaml beside the script if present. The trace is tagged mock=true; `cost` leaves it out."),
    RunOption("mock_script", ("--mock-script",), "path", None, "Reply script for --mock (JSON or YAML).", "FILE"),
    # Not from the environment: LLMTRACE_TRACE_ID is what a run tells its script (a run inside it gets its own id).
    RunOption("trace_id", ("--trace-id",), "str", None, "Use this UUID as the trace id instead of a new one.", "UUID", env=(), toml=False),
    RunOption("name", ("--name",), "str", None, "Name of the trace (default: the script's file name, or the module's name with -m).", "NAME"),
    RunOption("tag", ("--tag",), "list", None, "Tag the trace: key=value (repeatable).", "KEY=VALUE", env=("LLMTRACE_TAGS", "LLMTRACE_TAG"), toml="tags"),
    RunOption("quiet", ("--quiet", "-q"), "flag", False, "Don't print the summary when the script ends."),
    RunOption("no_cache", ("--no-cache",), "flag", False, "Don't answer calls from the response cache (or fill it)."),
    RunOption("cache_mode", ("--cache-mode",), "str", "replay", "replay: a re-run gets the answers an earlier run got, in order, while identical requests within one run still go to the provider (resamples differ, retries get new answers). reuse: every identical request is answered from the cache, also within a run (gateway-style).", "replay|reuse", choices=("replay", "reuse")),
    RunOption("no_children", ("--no-children",), "flag", False, "Don't trace Python child processes (multiprocessing, subprocess); also LLMTRACE_CHILDREN=0."),
    RunOption("cache_dir", ("--cache-dir",), "path", None, "Where the response cache lives (default: LLMTRACE_HOME/cache).", "DIR"),
    RunOption("cache_ttl", ("--cache-ttl",), "str", None, "Entries expire after this long: 3600, 30m, 12h, 7d (default: never).", "DURATION"),
    RunOption("cache_size", ("--cache-size",), "int", 1024, "Cache size limit in MiB; least recently stored entries go first.", "MIB", low=1),
    RunOption("offline", ("--offline",), "flag", False, "Send nothing: every LLM call is answered from the response cache, and a call it has no answer for fails at its call site (llmtrace.NoRecordedAnswer) with the nearest recorded request and a diff. No API key needed."),
    RunOption("semantic_cache", ("--semantic-cache",), "flag", False, "Also answer short prompts close in meaning to an earlier one (embeddings via the same endpoint)."),
    RunOption("semantic_threshold", ("--semantic-threshold",), "float", 0.95, "Cosine similarity needed for a semantic hit.", "COSINE", low=0.0, high=1.0),
    RunOption("embedding_model", ("--embedding-model",), "str", "text-embedding-3-small", "Embedding model for --semantic-cache.", "MODEL"),
    RunOption("otlp", ("--otlp",), "str", None, "Also stream spans live to this OTLP/HTTP endpoint (default: OTEL_EXPORTER_OTLP_ENDPOINT if set). Needs the otel extra (pip install 'llmtrace-local[otel]').", "URL"),
    RunOption("otlp_header", ("--otlp-header",), "list", None, "Send this header with the OTLP requests (repeatable; added to OTEL_EXPORTER_OTLP_HEADERS). MLflow needs x-mlflow-experiment-id=ID.", "NAME=VALUE", env=("LLMTRACE_OTLP_HEADERS", "LLMTRACE_OTLP_HEADER"), toml="otlp-headers"),
    RunOption("project", ("--project",), "str", None, "Project the trace belongs to; stored as the tag project=NAME and sent to OTLP backends (Phoenix's project). Default: LLMTRACE_PROJECT, the pyproject.toml key, LANGSMITH_PROJECT or LANGCHAIN_PROJECT.", "NAME"),
    RunOption("retries", ("--retries",), "int", 4, "Retries after a failed call (429, 5xx, timeouts, dropped connections): 4 means up to 5 attempts; 0 turns retrying off.", "N", low=0, high=20),
    RunOption("max_cost", ("--max-cost",), "float", None, "Budget: once the run's LLM calls have cost this much, the next call is not sent and raises llmtrace.BudgetExceeded in the script (cache hits cost nothing).", "USD", low=0),
    RunOption("max_calls", ("--max-calls",), "int", None, "Budget: LLM calls sent to the provider; the next one raises llmtrace.BudgetExceeded.", "N", low=0),
    RunOption("max_tokens", ("--max-tokens",), "int", None, "Budget: tokens in + out; once spent, the next call raises llmtrace.BudgetExceeded.", "N", low=0),
    RunOption("split", ("--split",), "flag", False, "One trace per top-level invocation (each chain.invoke, agent run or bare SDK call at the top), all sharing the run's id and tags: for a script that answers many questions or serves requests. See them with `llmtrace ls --run ID`."),
)
BY_KEY = {o.key: o for o in OPTIONS}
BY_FLAG = {flag: o for o in OPTIONS for flag in o.flags}
BY_TOML = {o.toml_key: o for o in OPTIONS if o.toml}
_TOML_ALIASES = {"tag": "tags", "otlp-header": "otlp-headers"}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")
_PROJECT_FALLBACKS = ("LANGSMITH_PROJECT", "LANGCHAIN_PROJECT")


def _range(o: RunOption) -> str:
    if o.low is not None and o.high is not None:
        return f" from {o.low:g} to {o.high:g}"
    return f" of at least {o.low:g}" if o.low is not None else ""


def convert(o: RunOption, value: Any, where: str) -> Any:
    """`value` (text from the environment, or a TOML value) as option `o` takes it; a UserError naming
    `where` it came from when it does not fit."""
    def bad(expected: str) -> UserError:
        return UserError(f"bad {where} {value!r}: expected {expected}")

    if o.kind == "flag":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        raise bad("true or false (1 or 0)")
    if o.kind == "list":
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, dict) and all(isinstance(v, (str, int, float, bool)) for v in value.values()):
            return [f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in value.items()]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        raise bad("key=value pairs (a table or a list of strings; in a variable: separated by commas)")
    if o.kind in ("int", "float"):
        number: Any = None
        if isinstance(value, bool):
            pass
        elif o.kind == "int" and isinstance(value, int):
            number = value
        elif o.kind == "float" and isinstance(value, (int, float)):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = int(value.strip()) if o.kind == "int" else float(value.strip())
            except ValueError:
                pass
        kind = "an integer" if o.kind == "int" else "a number"
        if number is None or number != number or (o.low is not None and number < o.low) or (o.high is not None and number > o.high):
            raise bad(kind + _range(o))
        return number
    if o.key == "cache_ttl" and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)  # seconds
    if not isinstance(value, str) or (o.kind == "path" and not value):
        raise bad("a path" if o.kind == "path" else "text")
    if o.choices and value not in o.choices:
        raise bad(" or ".join(o.choices))
    return Path(value).expanduser() if o.kind == "path" else value


def find_pyproject(start: Path | None = None) -> Path | None:
    """The nearest pyproject.toml at or above `start` (the working directory)."""
    try:
        here = (start or Path.cwd()).resolve()
    except OSError:
        return None
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def file_settings(path: Path) -> dict[str, Any]:
    """`[tool.llmtrace]` of `path`, converted ({} when it has none)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"bad {path}: {e}") from None
    section = doc.get("tool", {}).get("llmtrace", {}) if isinstance(doc.get("tool"), dict) else {}
    if not isinstance(section, dict):
        raise UserError(f"bad [tool.llmtrace] in {path}: expected a table")
    out: dict[str, Any] = {}
    for raw_key, value in section.items():
        key = raw_key.replace("_", "-")
        o = BY_TOML.get(_TOML_ALIASES.get(key, key))
        if o is None:
            raise UserError(f"unknown key {raw_key!r} in [tool.llmtrace] of {path}: use one of {', '.join(sorted(BY_TOML))}")
        out[o.key] = convert(o, value, f"{raw_key} in [tool.llmtrace] of {path}")
    return out


def env_settings(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for o in OPTIONS:
        for var in o.envs:
            if var in environ and (o.kind != "list" or environ[var].strip()):
                value = convert(o, environ[var], var)
                out[o.key] = out[o.key] + value if o.kind == "list" and o.key in out else value
    return out


def _merged(*lists: Any) -> list[str]:
    """key=value lists merged, later keys winning, in first-seen order; a malformed entry kept for the
    tag parser to report."""
    seen: dict[str, str] = {}
    for values in lists:
        for raw in values or []:
            key = raw.partition("=")[0].strip() if "=" in raw else raw
            seen.pop(key, None)
            seen[key] = raw
    return list(seen.values())


def resolve(given: Mapping[str, Any], environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> dict[str, Any]:
    """Every run option's value: `given` on the command line, else from the environment, else from
    `[tool.llmtrace]` of the nearest pyproject.toml, else its default."""
    environ = os.environ if environ is None else environ
    found = find_pyproject(cwd)
    from_file = file_settings(found) if found is not None else {}
    from_env = env_settings(environ)
    out: dict[str, Any] = {}
    for o in OPTIONS:
        if o.kind == "list":
            out[o.key] = _merged(from_file.get(o.key), from_env.get(o.key), given.get(o.key))
        else:
            for source in (given, from_env, from_file):
                if o.key in source and source[o.key] is not None:
                    out[o.key] = source[o.key]
                    break
            else:
                out[o.key] = o.default
    if out["project"] is None:
        out["project"] = next((environ[v] for v in _PROJECT_FALLBACKS if environ.get(v, "").strip()), None)
    return out
