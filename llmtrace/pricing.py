"""Cost of one LLM call from model and token counts.

Prices come from genai-prices (data ships inside the package, so it works offline), overridden by
a user file for private or new models. An unknown model is unpriced (None), never $0.

Override file: $LLMTRACE_PRICES, else <llmtrace home>/prices.json, shaped as
    {"my-model": {"input": 0.15, "output": 0.60, "cached_input": 0.075}}
with prices in USD per million tokens (cached_input defaults to input).
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

_PROVIDERS = {"openai": "openai", "azure": "azure", "anthropic": "anthropic", "google": "google", "google_genai": "google"}


@functools.lru_cache(maxsize=1)
def _overrides() -> dict[str, dict[str, float]]:
    path = os.environ.get("LLMTRACE_PRICES")
    if path:
        p = Path(path)
    else:
        from llmtrace.home import home

        p = home() / "prices.json"
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}


def _from_override(model: str, input_tokens: int, output_tokens: int, cached: int) -> float | None:
    table = _overrides()
    entry = table.get(model)
    if entry is None:
        return None
    try:
        inp = float(entry["input"])
        out = float(entry["output"])
        cache_rate = float(entry.get("cached_input", inp))
    except (KeyError, TypeError, ValueError):
        return None
    return ((input_tokens - cached) * inp + cached * cache_rate + output_tokens * out) / 1e6


@functools.lru_cache(maxsize=512)
def _genai_price(model: str, provider: str | None, input_tokens: int, output_tokens: int, cached: int) -> float | None:
    try:
        from genai_prices import Usage, calc_price
    except ImportError:
        return None
    usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens, cache_read_tokens=cached or None)
    pid = _PROVIDERS.get((provider or "").lower())
    try:
        return float(calc_price(usage, model, provider_id=pid).total_price)
    except LookupError:
        if pid is not None:
            try:
                return float(calc_price(usage, model).total_price)
            except LookupError:
                return None
        return None
    except Exception:  # a pricing-data quirk must not lose the span
        return None


# --- flat prices remembered across runs ---------------------------------------------------------------
# Importing genai-prices loads its whole price table (~0.3 s): most of what `llmtrace run` adds to a
# short script. A model with one flat price per token kind (no tiers) is priced by three numbers,
# learnt from genai-prices once and kept in the user's cache folder (price-units.json), in a table per
# installed genai-prices data (the last few, so virtualenvs with different data do not throw each
# other's away); later runs price such calls without importing it. The three numbers
# are kept only when they reproduce genai-prices' own result for this call and for a probe with
# cached tokens; anything else (tiers, unknown models) is asked of genai-prices each time. A model
# whose price changes on a date is kept for the UTC day it was learnt on; one whose price depends on
# the time of day (off-peak rates) is never kept.

_UNKNOWN = object()
_units_lock = threading.Lock()


def _data_stamp() -> str | None:
    """Which genai-prices data is installed (its file's size and time), without importing it."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("genai_prices")
        if spec is None or spec.origin is None:
            return None
        st = os.stat(Path(spec.origin).parent / "data.py")
        return f"{st.st_size}-{st.st_mtime_ns}"
    except (OSError, ImportError, ValueError):
        return None


def _units_path() -> Path:
    """$LLMTRACE_PRICE_UNITS, else price-units.json in the user's cache folder (not LLMTRACE_HOME: the
    numbers depend on the installed genai-prices alone, so a new home need not import it again)."""
    path = os.environ.get("LLMTRACE_PRICE_UNITS")
    if path:
        return Path(path).expanduser()
    from llmtrace.home import user_dir

    return user_dir("cache") / "llmtrace" / "price-units.json"


_KEPT_TABLES = 4  # tables of different genai-prices data kept in the file (the most recently learnt)


def _tables() -> dict[str, Any]:
    """price-units.json's tables, by genai-prices data stamp, oldest first ({} when none or unreadable)."""
    try:
        data = json.loads(_units_path().read_text())
    except (OSError, ValueError):
        return {}
    tables = data.get("tables") if isinstance(data, dict) else None
    if not isinstance(tables, dict):
        return {}
    return {k: v for k, v in tables.items() if isinstance(v, dict) and isinstance(v.get("models"), dict)}


@functools.lru_cache(maxsize=1)
def _units() -> dict[str, Any]:
    """The remembered flat prices for the installed genai-prices data ({"models": {}} when none)."""
    stamp = str(_data_stamp())
    return {"stamp": stamp, "models": _tables().get(stamp, {}).get("models", {})}


def _utc_day() -> str:
    return time.strftime("%Y-%m-%d", time.gmtime())


def _linear(units: list[Any], input_tokens: int, output_tokens: int, cached: int) -> float:
    inp, cache_read, out = units[:3]
    return round(((input_tokens - cached) * inp + cached * cache_read + output_tokens * out) / 1e6, 12)


def _learn(model: str, provider: str | None, input_tokens: int, output_tokens: int, cached: int, price: float) -> None:
    """Remember this model's flat prices when three numbers reproduce genai-prices exactly."""
    try:
        from genai_prices import Usage, calc_price

        pid = _PROVIDERS.get((provider or "").lower())
        day = _utc_day()
        calc = calc_price(Usage(input_tokens=1, output_tokens=1), model, provider_id=pid)
        mp, dated = calc.model_price, calc.model.prices
        kinds = {type(c.constraint).__name__ for c in dated} if isinstance(dated, list) else set()
        if kinds - {"NoneType", "StartDateConstraint"}:
            return  # off-peak rates: the price depends on the hour
        fields = {k: v for k, v in vars(mp).items() if v is not None}
        if not all(isinstance(v, Decimal) for v in fields.values()):
            return  # tiers, or prices that depend on more than the token counts
        units = [float(mp.input_mtok or 0), float(mp.cache_read_mtok if mp.cache_read_mtok is not None else mp.input_mtok or 0),
                 float(mp.output_mtok or 0)]
        probe = _genai_price(model, provider, 10_000, 1_000, 4_000)
        for got, want in ((_linear(units, input_tokens, output_tokens, cached), price),
                          (_linear(units, 10_000, 1_000, 4_000), probe)):
            if want is None or abs(got - want) > 1e-12 * max(1.0, abs(want)):
                return
        if isinstance(dated, list):
            units.append(day)  # the price changes on some date: good for this UTC day only
    except Exception:
        return
    with _units_lock:
        table = _units()
        table["models"][f"{provider or ''}/{model}"] = units
        tables = _tables()  # as the file is now: another virtualenv may have written its own table since
        tables.pop(table["stamp"], None)
        tables[table["stamp"]] = table
        for stale in list(tables)[:-_KEPT_TABLES]:
            del tables[stale]
        try:
            path = _units_path()
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # a new file, 0600
            try:
                with os.fdopen(fd, "w") as f:
                    f.write(json.dumps({"tables": tables}))
                os.replace(tmp, path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError:
            pass


def cost(
    model: str | None, provider: str | None, input_tokens: int | None, output_tokens: int | None, cached: int | None = 0
) -> float | None:
    """USD for one call, or None when the model or the token counts are unknown."""
    if not model or input_tokens is None or output_tokens is None:
        return None
    cached = min(cached or 0, input_tokens)
    override = _from_override(model, input_tokens, output_tokens, cached)
    if override is not None:
        return override
    units = _units()["models"].get(f"{provider or ''}/{model}", _UNKNOWN)
    if units is not _UNKNOWN and (len(units) == 3 or units[3] == _utc_day()):
        return _linear(units, input_tokens, output_tokens, cached)
    price = _genai_price(model, provider, input_tokens, output_tokens, cached)
    if price is not None:
        _learn(model, provider, input_tokens, output_tokens, cached, price)
    return price
