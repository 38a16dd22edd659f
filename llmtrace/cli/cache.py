"""`llmtrace cache stats` and `cache clear`: the response cache."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

import llmtrace.timespec as timespec
from llmtrace.cli.app import JsonFlag, app
from llmtrace.cli.common import (
    open_cli_store,
    stderr_console,
    stdout_console,
)
from llmtrace.cli.values import Typer
from llmtrace.errors import ExitCode, UserError

cache_app = Typer(help="Inspect or clear the response cache.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")
CacheDirOpt = Annotated[Optional[Path], typer.Option("--cache-dir", help="The cache folder (default: LLMTRACE_HOME/cache).")]


def _cache_dir(path: Path | None) -> Path:
    from llmtrace.home import home

    return path or home() / "cache"


@cache_app.command("stats")
def cache_stats(cache_dir: CacheDirOpt = None, as_json: JsonFlag = False) -> None:
    """Entries and size of the response cache, and what its hits have saved.

    Example: llmtrace cache stats
    """
    from llmtrace.store import cache as rc

    directory = _cache_dir(cache_dir)
    entries = size = 0
    if directory.exists():
        try:
            entries, size = rc.stats(directory)
        except Exception as e:
            raise UserError(f"cannot read the cache at {directory}: {e}", ExitCode.STORE) from None
    db = open_cli_store()
    hits, saved = db.execute("SELECT count(*), COALESCE(SUM(cost_saved), 0) FROM spans WHERE cache_hit IS NOT NULL").fetchone()
    data = {"directory": str(directory), "entries": entries, "bytes": size, "hits": hits, "saved": saved}
    if as_json:
        print(json.dumps(data, indent=2))
        return
    from llmtrace.render import fmt

    stdout_console().print(
        f"cache   {directory}\nentries {entries:,}\nsize    {size / 1048576:,.1f} MiB\n"
        f"hits    {hits:,} recorded, saving {fmt.money(saved)}"
    )


@cache_app.command("clear")
def cache_clear(
    older_than: Optional[str] = typer.Option(None, "--older-than", help="Only entries stored more than this long ago (30m, 12h, 7d)."),
    cache_dir: CacheDirOpt = None,
) -> None:
    """Delete cached responses (all, or those older than --older-than).

    Example: llmtrace cache clear --older-than 7d
    """
    from llmtrace.store import cache as rc

    age = timespec.parse_duration(older_than, option="--older-than") if older_than else None
    directory = _cache_dir(cache_dir)
    if not directory.exists():
        stderr_console().print("the cache is empty")
        return
    n = rc.clear(directory, age)
    stderr_console().print(f"removed {n:,} cached response{'s' if n != 1 else ''}")
