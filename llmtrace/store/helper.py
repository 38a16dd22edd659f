"""The spool copied into SQLite by a helper process, off the traced program's process.

The traced program's thread appends each finished span to the memory-mapped spool, as with the
writer thread (`spool.SpoolingWriter`); five times a second, the in-flight publisher's thread sends a
17-byte note of where the spool now ends on a socket. A helper process (`main` below) reads the spool
files up to that point and stores the rows, one commit for what 200 ms gathered: a span is in SQLite
within about half a second of its end. It is started once the run has spooled 16 records or its first
record is half a second old; a shorter run (a one-call script) stores its few records at its end,
in its own process, which costs less than starting a process. Encoding rows and
SQLite's work then run on another core when there is one, and never hold the traced program's GIL:
in a loop of fast calls, that work and its GIL hand-overs were most of what tracing added.

- The socket is a connected pair of SEQPACKET sockets: each note arrives whole or not at all, and
  the helper sees the end of the file when the traced process is gone. A note is sent without
  waiting; if the socket is full it is dropped, as the next one says more.
- The helper's interpreter is the program's, isolated (`-I`), with this llmtrace's folder first on
  its path. It runs in a session of its own: a ^C at the terminal is for the program, not for it.
  Its standard output is /dev/null; warnings go to the run's standard error.
- At the run's end the program stops appending, sends where the spool ends and waits for "ok"
  (every row stored). Anything else (no helper, it died, or could not write) and it loads what the
  spool holds itself. If the program is killed, the helper stores what it was told of and leaves
  the rest of the spool for the next llmtrace command (`spool.recover`), as before.
- Where SEQPACKET sockets do not exist (macOS, Windows), the writer thread does the copying
  (`spool.SpoolingWriter`). Where the helper cannot start, the run's end stores the spool.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from llmtrace.clock import timer_scale
from llmtrace.store.batches import gather
from llmtrace.store.spool import (
    _ANSWER,
    BatchStore,
    _load,
    close_caches,
    _Spooler,
    begun_traces,
    ended_traces,
    decode_records,
    read_records,
    segment_path,
    store_answers,
)

_NOTE = struct.Struct("<cqq")  # kind, segment, offset
_AT, _STOP = b"P", b"S"  # the spool ends at; the run ends (and where the spool ends)
_SEND_NOW = getattr(socket, "MSG_DONTWAIT", 0) | getattr(socket, "MSG_NOSIGNAL", 0)
_SEND = getattr(socket, "MSG_NOSIGNAL", 0)
_REPLY_TIMEOUT_S = 60.0
# The helper starts once the run has spooled this many records, or its first record is this old: a short
# run (a one-call script) stores its few spans at its end, where a helper's start would cost more
# CPU than all of them (its interpreter and imports: ~90 ms); a longer one has them in SQLite soon.
_START_AFTER_RECORDS = 16
_START_AFTER_S = 0.5 * timer_scale()
_HOME = str(Path(__file__).resolve().parent.parent.parent)  # the folder this llmtrace package is in
_START = "import sys; sys.path.insert(0, sys.argv[1]); from llmtrace.store.helper import main; sys.exit(main(sys.argv[2:]))"


def available() -> bool:
    return (sys.platform.startswith("linux") and hasattr(socket, "SOCK_SEQPACKET") and hasattr(socket, "MSG_NOSIGNAL")
            and bool(sys.executable) and os.path.exists("/bin/sh"))


class HelperSpoolingWriter(_Spooler):
    """Exporter: spool record now, SQLite soon after, from the helper process once the run is long
    enough to want one; `close()` waits for it, then removes the spool (or stores what is left itself)."""

    def __init__(self, writer: Any, directory: Path, trace_id: str):
        super().__init__(writer, directory, trace_id)
        self._sock: socket.socket | None = None  # till the helper is started (`_start_when_due`)
        self._records = 0
        self._first_s: float | None = None  # when the first record was spooled
        self._pid = os.getpid()
        self._gone = False  # the helper cannot be reached: the run's end stores the spool here
        self._closed = False
        self._ticking = False  # tick() has been called: from then on, it tells where the spool ends
        self._unnoted = False  # records spooled since the last note

    def _start(self) -> None:
        """Start the helper (under the lock). If it cannot start, the run's end stores the spool itself."""
        if self._sock is not None or self._gone or os.getpid() != self._pid:  # a fork child: not its helper
            return
        try:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        except OSError as e:
            self._not_started(e)
            return
        try:
            # Started by a shell that exits at once, so the helper is no child of the traced program
            # (whose os.wait() would otherwise find it), in a session of its own (a ^C is not for it).
            # Isolated (-I): neither the program's folder nor its PYTHON* settings can put other modules
            # in the helper's way; this llmtrace's own folder comes first.
            launcher = subprocess.Popen(
                ["/bin/sh", "-c", 'exec "$0" "$@" &', sys.executable, "-I", "-c", _START, _HOME, self.writer.db_path,
                 str(self.directory), self.trace_id, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                start_new_session=True,
            )
            if launcher.wait() != 0:
                raise OSError(f"/bin/sh exited {launcher.returncode}")
        except OSError as e:
            ours.close()
            self._not_started(e)
            return
        finally:
            theirs.close()
        self._sock = ours

    def _not_started(self, error: OSError) -> None:
        self._gone = True
        print(f"llmtrace: warning: the store's helper process did not start ({error}); spans are stored at the run's "
              "end", file=sys.stderr)

    def _start_when_due(self) -> bool:
        """Whether the helper is running, started now if the run has spooled enough (under the lock).
        A short run never starts it: its end stores the few records itself, cheaper than a process."""
        if self._sock is not None:
            return True
        if self._gone or self._first_s is None:
            return False
        if self._records >= _START_AFTER_RECORDS or time.monotonic() - self._first_s >= _START_AFTER_S:
            self._start()
        return self._sock is not None

    def tick(self) -> None:
        """Called five times a second (by the in-flight publisher's thread): a slow run's first spans
        reach SQLite within about `_START_AFTER_S` of their end, not at its next span, and the helper
        hears where the spool ends. The helper gathers 200 ms of records for a commit anyway, and a
        note from the thread that spooled a record was a system call there: in a server's request
        threads, each one a wait for the GIL to come back."""
        self._ticking = True
        if self._gone or self._first_s is None or (self._sock is not None and not self._unnoted):
            return
        with self._lock:
            if not self.file.closed and (self._unnoted if self._sock is not None else self._start_when_due()):
                self._unnoted = False
                self._send(_NOTE.pack(_AT, self._segment, self.file._offset))

    def _send(self, note: bytes, wait: bool = False) -> None:
        if self._gone or self._sock is None:
            return
        try:
            self._sock.send(note, _SEND if wait else _SEND_NOW)
        except BlockingIOError:  # the helper is behind: the next note (or tick) says where the spool ends
            self._unnoted = True
        except OSError:
            self._gone = True

    def _handed(self, item: Any) -> None:
        if self._sock is None:
            self._records += 1
            if self._first_s is None:
                self._first_s = time.monotonic()
            if not self._start_when_due():
                return
        if self._ticking:  # told by the next tick
            self._unnoted = True
            return
        self._unnoted = False  # no ticks (no in-flight publisher): every record is told
        self._send(_NOTE.pack(_AT, self._segment, self.file._offset))

    def answer_handoff(self, cache: Any) -> Any:
        """For the run's response cache (`ResponseCache.handoff`): an answer goes into the spool, from
        there the helper writes it to the cache (or this process, at the run's end, into `cache` itself);
        a kill cannot lose it."""
        from llmtrace.store.cache import encode_answer

        place = cache.place()
        cache.adopt()
        append = self._append

        def handoff(key: str, entry: dict[str, Any]) -> None:
            append(_ANSWER, encode_answer(place, key, entry), None)

        return handoff

    def _segment_full(self, path: Path) -> None:
        pass  # the helper deletes a segment once it has stored the rows of the next one's start

    def finish_trace(self, trace: Any) -> None:
        """Finish a trace of this run (`run --split`) once the spans spooled before it are stored."""
        if os.getpid() != self._pid:  # a fork child of the traced program: not its trace to finish
            return
        with self._lock:
            self._start()  # the trace is finished once its spans are stored: by the helper
            if self._gone:  # its first row is still in the spool: written here first
                self.writer.begin_traces([self.writer.trace_fields(trace)])
                self.writer.finish_trace(trace)  # the run's end sums every trace of the run again
                return
            self.end_trace(trace)  # by the spool, after its spans: the helper finishes it once they are stored

    def close(self) -> None:
        """Wait for the helper to store everything spooled, then remove the spool."""
        if os.getpid() != self._pid:  # a fork child of the traced program: the helper is its parent's
            return
        with self._lock:
            if self._closed:
                return
            self._closed = True
            end = _NOTE.pack(_STOP, self._segment, self.file._offset)
            spooled = self._segment > 0 or self.file._offset > 0
            self.file.close()  # appends end here: the note says where
            self._send(end, wait=True)
        ok = False
        sock = self._sock
        if not spooled:  # nothing to wait for (the helper may still be starting)
            if sock is not None:
                sock.close()
            self.file.path.unlink(missing_ok=True)
            return
        if sock is not None and not self._gone:
            sock.settimeout(_REPLY_TIMEOUT_S)
            try:
                ok = sock.recv(16) == b"ok"
            except OSError:
                pass
        if sock is not None:
            sock.close()  # a helper still at work sees the end of the file and stops
        if ok:
            self.file.path.unlink(missing_ok=True)
            return
        try:  # what no helper stored (a short run's, or one whose helper died): from the spool, in this process
            for n in range(self._segment + 1):
                path = self._segment_path(n)
                if path.exists():
                    _load(self.writer.db, path, self.redactor)
            close_caches()
        except Exception as e:
            print(f"llmtrace: warning: could not write spans to the store ({e}); they are kept in "
                  f"{self.directory} and loaded by the next llmtrace command", file=sys.stderr)


class _Reader:
    """The helper's side: the spool's segments read up to where the program said they end."""

    def __init__(self, directory: Path, trace_id: str):
        self.directory, self.trace_id = directory, trace_id
        self.segment, self.pos = 0, 0

    def read(self, segment: int, offset: int) -> tuple[list[tuple[bytes, bytes]], list[Path]]:
        """The records up to (segment, offset), and the segment files wholly read on the way."""
        records: list[tuple[bytes, bytes]] = []
        done: list[Path] = []
        while self.segment < segment:  # a segment before the last is closed: read to its end
            path = segment_path(self.directory, self.trace_id, self.segment)
            records += read_records(_read_from(path, self.pos, None))
            done.append(path)
            self.segment, self.pos = self.segment + 1, 0
        if self.segment == segment and offset > self.pos:
            data = _read_from(segment_path(self.directory, self.trace_id, segment), self.pos, offset - self.pos)
            records += read_records(data)
            self.pos = offset
        return records, done


def _read_from(path: Path, at: int, size: int | None) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(at)
            return f.read() if size is None else f.read(size)
    except FileNotFoundError:
        return b""


def serve(sock: socket.socket, writer: Any, directory: Path, trace_id: str) -> None:
    """Store what the program spools until it says the run has ended (reply "ok" or "failed"), or is gone."""
    notes: queue.SimpleQueue[Any] = queue.SimpleQueue()
    ending = threading.Event()

    def receive() -> None:  # notes, as they come; None when the program is gone
        while True:
            try:
                data = sock.recv(1 << 20)
            except OSError:
                data = b""
            if len(data) < _NOTE.size:
                ending.set()
                notes.put(None)
                return
            kind, segment, offset = _NOTE.unpack_from(data)
            if kind == _STOP:
                ending.set()
            notes.put((kind, segment, offset))
            if kind == _STOP:
                return

    threading.Thread(target=receive, name="llmtrace-notes", daemon=True).start()
    reader, store = _Reader(directory, trace_id), BatchStore(writer, directory)
    encoder = writer.encoder
    while True:
        batch = gather(notes, ending)
        gone = None in batch
        got = [b for b in batch if b is not None]
        stop = any(kind == _STOP for kind, _, _ in got)
        records, done = reader.read(*max((segment, offset) for _, segment, offset in got)) if got else ([], [])
        store_answers(records)  # before the segments they came in can go
        store.store(decode_records(records, encoder), done, ended_traces(records), begun_traces(records))
        if stop:
            # Let go of the run's output streams first: whoever reads them to their end must not wait for us.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
            sock.send(b"failed" if store.failed else b"ok")
            return
        if gone:  # the program was killed: the rest of its spool is for the next llmtrace command
            return


def main(argv: list[str]) -> int:
    db_path, directory, trace_id, fd = argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock = socket.socket(fileno=int(fd))
    from llmtrace.redact import Redactor
    from llmtrace.store.db import _connect
    from llmtrace.store.writer import StoreWriter

    try:
        writer = StoreWriter(_connect(Path(db_path)), Redactor())
    except Exception as e:  # the program stores its spool itself at its end
        print(f"llmtrace: warning: the store's helper could not start ({e}); spans are stored at the run's end",
              file=sys.stderr)
        return 1
    # Snapshot records were found clean when taken, and JSON ones were redacted then: no secrets needed here.
    try:
        serve(sock, writer, Path(directory), trace_id)
    finally:
        writer.db.close()
        close_caches()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
