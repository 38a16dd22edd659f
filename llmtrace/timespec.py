"""Parse the time expressions that --since / --until / --older-than accept into UTC microseconds.

today, yesterday, now, this-week (Monday), this-month, last-week, last-month; relative spans
30s / 30m (or 30min) / 24h / 7d / 2w / 3mo (30-day months) ago — `m` is minutes for every option, months
are `mo`; an ISO date (local midnight) or
date-time (local unless it carries an offset). Calendar words mean the start of that day, week or
month in local time.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from llmtrace.errors import UserError

_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60, "h": 3600, "hr": 3600,
          "d": 86400, "day": 86400, "days": 86400, "w": 604800, "wk": 604800, "week": 604800, "weeks": 604800,
          "mo": 2592000, "month": 2592000, "months": 2592000}  # a month is 30 days
_REL = re.compile(r"^(\d+(?:\.\d+)?)\s*(" + "|".join(sorted(_UNITS, key=len, reverse=True)) + ")$")
HELP = "today, yesterday, this-week, this-month, 30m, 24h, 7d, 2w, or an ISO date / date-time"


def _us(dt: datetime) -> int:
    return int(dt.timestamp() * 1_000_000)


def parse_time(text: str, now: datetime | None = None, *, option: str = "--since") -> int:
    """UTC microseconds of `text`."""
    now = (now or datetime.now().astimezone()).astimezone()
    raw = text.strip().lower()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if raw == "now":
        return _us(now)
    if raw == "today":
        return _us(midnight)
    if raw == "yesterday":
        return _us(midnight - timedelta(days=1))
    if raw in ("this-week", "week"):
        return _us(midnight - timedelta(days=midnight.weekday()))
    if raw == "last-week":
        return _us(midnight - timedelta(days=midnight.weekday() + 7))
    if raw in ("this-month", "month"):
        return _us(midnight.replace(day=1))
    if raw == "last-month":
        first = midnight.replace(day=1)
        return _us((first - timedelta(days=1)).replace(day=1))
    m = _REL.match(raw)
    if m:
        return _us(now - timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)]))
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UserError(f"bad {option} {text!r}: use {HELP}") from None
    if dt.tzinfo is None:
        dt = dt.astimezone()  # naive means local time
    return _us(dt)


def parse_duration(text: str, *, option: str = "--cache-ttl") -> float:
    """Seconds in `30s`, `15m` (or `15min`), `12h`, `7d`, `2w`, `3mo` (a bare number is seconds)."""
    raw = text.strip().lower()
    try:
        value = float(raw)
    except ValueError:
        m = _REL.match(raw)
        if not m:
            raise UserError(f"bad {option} {text!r}: use a duration such as 3600, 30m, 12h, 7d") from None
        value = float(m.group(1)) * _UNITS[m.group(2)]
    if value <= 0:
        raise UserError(f"bad {option} {text!r}: must be more than zero")
    return value


def iso_utc(us: int | None) -> str | None:
    """`2026-11-27T17:02:03.123456Z` for UTC microseconds (None stays None)."""
    if us is None:
        return None
    return (datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=us)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
