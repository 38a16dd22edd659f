"""Response bodies as they pass the SDK: a tee that records them, and a replay of a recorded one.

Both are httpx byte streams placed under the SDK's own response object, so the SDK parses a
recorded answer exactly as it parsed the live one: the same events, one by one, for streams. A
server-sent-event body is cut at event boundaries, which lets one event (the usage chunk llmtrace
asked for and the caller did not) be kept from the caller.
"""

from __future__ import annotations

import functools
import sys
from typing import Any, Iterator, Protocol


class Sink(Protocol):
    def first_bytes(self) -> None: ...

    def hidden(self, event: bytes) -> bool: ...

    def body_done(self, parts: list[bytes], error: BaseException | None, exhausted: bool) -> None: ...


def _event_ends(buffer: bytes | bytearray, pos: int = 0) -> Iterator[int]:
    """Where each server-sent event from `pos` on ends (after its blank line: LF LF or CRLF CRLF). Each
    separator is looked for with bytes.find and its next place remembered, so every byte is searched
    at most once per separator (a body of many LF LF events never re-scans to its end for a CRLF CRLF)."""
    lf = crlf = -2  # the next place of each separator at or after pos; -1: none left; -2: not looked yet
    while True:
        if lf == -2 or 0 <= lf < pos:
            lf = buffer.find(b"\n\n", pos)
        if crlf == -2 or 0 <= crlf < pos:
            crlf = buffer.find(b"\r\n\r\n", pos)
        if crlf >= 0 and (lf < 0 or crlf < lf):
            pos = crlf + 4
        elif lf >= 0:
            pos = lf + 2
        else:
            return
        yield pos


def split_events(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Complete server-sent events (each with its blank line) and the unfinished rest."""
    events: list[bytes] = []
    start = 0
    for end in _event_ends(buffer):
        events.append(buffer[start:end])
        start = end
    return events, buffer[start:]


class EventSplitter:
    """split_events over a body that arrives in chunks, in time linear in the body: the unfinished
    event is kept in one growing buffer and only its new bytes are searched for the event's end."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.scanned = 0  # bytes of buf already searched (less the 3 an event end can straddle)

    def feed(self, chunk: bytes) -> list[bytes]:
        buf = self.buf
        buf += chunk
        events: list[bytes] = []
        start = 0
        for end in _event_ends(buf, max(self.scanned - 3, 0)):
            events.append(bytes(buf[start:end]))
            start = end
        if start:
            del buf[:start]
        self.scanned = len(buf)
        return events

    def rest(self) -> bytes:
        return bytes(self.buf)


@functools.lru_cache(maxsize=4)
def stream_classes(httpx_module: str) -> tuple[type, type, type]:
    """(Tee, AsyncTee, Replay) built on the byte-stream bases of the httpx the SDK uses."""
    mod = sys.modules[httpx_module]
    sync_base, async_base = mod.SyncByteStream, mod.AsyncByteStream

    class Tee(sync_base):  # type: ignore[misc, valid-type]
        def __init__(self, inner: Any, sink: Sink, sse: bool):
            self.inner, self.sink, self.sse = inner, sink, sse
            self.parts: list[bytes] = []
            self.done = False

        def _finish(self, error: BaseException | None, exhausted: bool, rest: bytes = b"") -> None:
            if not self.done:
                self.done = True
                if rest:
                    self.parts.append(rest)
                self.sink.body_done(self.parts, error, exhausted)

        def __iter__(self) -> Any:
            splitter = EventSplitter()
            first = True
            try:
                for chunk in self.inner:
                    if first and chunk:
                        first = False
                        self.sink.first_bytes()
                    if not self.sse:
                        self.parts.append(chunk)
                        yield chunk
                        continue
                    for event in splitter.feed(chunk):
                        self.parts.append(event)
                        if not self.sink.hidden(event):
                            yield event
            except BaseException as e:
                self._finish(e, False, splitter.rest())
                raise
            rest = splitter.rest()
            self._finish(None, True, rest)
            if rest:
                yield rest

        def close(self) -> None:
            try:
                self.inner.close()
            finally:
                self._finish(None, False)

    class AsyncTee(async_base):  # type: ignore[misc, valid-type]
        def __init__(self, inner: Any, sink: Sink, sse: bool):
            self.inner, self.sink, self.sse = inner, sink, sse
            self.parts: list[bytes] = []
            self.done = False

        _finish = Tee._finish

        async def __aiter__(self) -> Any:
            splitter = EventSplitter()
            first = True
            try:
                async for chunk in self.inner:
                    if first and chunk:
                        first = False
                        self.sink.first_bytes()
                    if not self.sse:
                        self.parts.append(chunk)
                        yield chunk
                        continue
                    for event in splitter.feed(chunk):
                        self.parts.append(event)
                        if not self.sink.hidden(event):
                            yield event
            except BaseException as e:
                self._finish(e, False, splitter.rest())
                raise
            rest = splitter.rest()
            self._finish(None, True, rest)
            if rest:
                yield rest

        async def aclose(self) -> None:
            try:
                await self.inner.aclose()
            finally:
                self._finish(None, False)

    class Replay(sync_base, async_base):  # type: ignore[misc, valid-type]
        """A recorded body, one event (or the whole body) per chunk."""

        def __init__(self, parts: list[bytes]):
            self.parts = parts

        def __iter__(self) -> Any:
            yield from self.parts

        async def __aiter__(self) -> Any:
            for part in self.parts:
                yield part

        def close(self) -> None:
            pass

        async def aclose(self) -> None:
            pass

    return Tee, AsyncTee, Replay
