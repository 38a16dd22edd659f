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
from pathlib import Path

_PROVIDERS = {"openai": "openai", "azure": "azure", "anthropic": "anthropic", "google": "google"}


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
    return _genai_price(model, provider, input_tokens, output_tokens, cached)
