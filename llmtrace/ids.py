"""Id generation: UUIDv7 for spans (time-ordered, like LangChain's run ids), random for traces."""

from __future__ import annotations

import os
import time
import uuid


def _uuid7_int() -> int:
    """A UUIDv7 (RFC 9562) as an integer: 48-bit Unix milliseconds, then random bits."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return value


def uuid7() -> uuid.UUID:
    """A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then random bits."""
    return uuid.UUID(int=_uuid7_int())


def new_trace_id() -> str:
    # Trace ids are random (v4) rather than v7: a v7 id starts with the timestamp, so two runs
    # within ~65 s would share their first 8 characters and the short id would be useless.
    return str(uuid.uuid4())


def new_span_id() -> str:
    # str(uuid7()) without the UUID object (its constructor costs more than the id).
    h = "%032x" % _uuid7_int()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def short_id(trace_id: str) -> str:
    return trace_id.replace("-", "")[:8]
