"""Durable, cheap span recording: an append-only spool file plus a group-committing copier (a helper
process, `store.helper`; where there can be none, the writer thread here).

A finished span is appended to `<home>/spool/<trace-id>.spool` in the thread that ended it. The
file is memory-mapped (shared) over space allocated ahead, so appending is a memory copy with no
system call and no release of the GIL, yet the bytes belong to the kernel's page cache at once: a
kill of the process cannot lose them. The file grows in steps; unused space is zero bytes. Where
space cannot be allocated (a full disk), records are written with pwrite instead (`SpoolFile`). A
copier stores spans into SQLite in batches, one commit per batch (at most every 200 ms), so
`ls` and `show` see a running trace within about half a second. When the run finishes, the spool file is removed. A spool left
behind by a killed run is loaded into the store by the next llmtrace command (`recover`).

What the thread that ended a span writes is as little as makes the span safe: a marshal snapshot
of its values when nothing in them needs redacting (the common case, a few microseconds), else its
encoded and redacted rows as JSON (the old way, ~100 µs for an LLM call). The copier turns a
snapshot into rows. Records are framed: a tag byte (`M` snapshot, `J` JSON rows, `A` an answer for
the response cache, `store.helper`), a 4-byte length, the data. Nothing read back is unpickled. Spools of earlier versions (`<trace>.jsonl`, one JSON line a span) still load.
"""

from __future__ import annotations

import errno
import json
import mmap
import os
import queue
import sqlite3
import struct
import sys
import threading
from pathlib import Path
from typing import Any

from llmtrace.errors import warn_once
from llmtrace.store.batches import gather
from llmtrace.model import Span
from llmtrace.store.writer import StoreWriter, encode_json

_STOP = object()
_BATCH = 2048
_INITIAL_BYTES = 1 << 20
_SEGMENT_BYTES = 2 << 20


_HEAD = struct.Struct("<cI")  # tag, length
# `A`: an answer for the response cache (`cache.encode_answer`: JSON and bytes). `C` held a pickle
# in earlier versions: such a record is skipped unread (a spool is a file someone may have planted).
# `B`: a trace of a split run begins (its row's fields as JSON, redacted), stored before the spans after it.
# `E`: it ended (what `StoreWriter.finish_trace` writes of it, as JSON, redacted), finished after the spans
# before it. Both go by the spool, so the traced program makes no system call for a trace of its own.
_SNAPSHOT, _JSON, _ANSWER, _PICKLED, _BEGIN, _END = b"M", b"J", b"A", b"C", b"B", b"E"
_NOT_ROWS = (_ANSWER, _PICKLED, _BEGIN, _END)  # records that hold no span
_ENDED_FIELDS = ("id", "end_us", "status", "exit_code", "error", "traceback")  # what finish_trace writes of a trace
SUFFIXES = (".spool", ".jsonl")  # .jsonl: written by earlier versions


def spool_dir(home: Path) -> Path:
    return home / "spool"


def read_records(data: bytes) -> list[tuple[bytes, bytes]]:
    """The (tag, data) records of a spool file's bytes, up to the first one a kill cut short."""
    out, at, end = [], 0, len(data)
    while at + _HEAD.size <= end:
        tag, length = _HEAD.unpack_from(data, at)
        at += _HEAD.size
        if tag not in (_SNAPSHOT, _JSON, _ANSWER, _PICKLED, _BEGIN, _END) or at + length > end:
            break
        out.append((tag, data[at : at + length]))
        at += length
    return out


class SpoolFile:
    """An append-only file of span records (see the module's docstring for their frame).

    Written through a shared memory map, but only over space the file system has given it
    (`posix_fallocate`): a store through a map into a hole the disk cannot fill kills the process
    with SIGBUS. Where space cannot be had (the disk is full, or the file system does not allocate
    ahead), the file is written with `pwrite` from there on; a record that cannot be written at all
    is lost, with one warning, and the traced program runs on."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        self._offset = 0
        self._size = 0
        self._map: mmap.mmap | None = None
        self._lock = threading.RLock()  # re-entered when a signal handler finishes the run
        self.closed = False
        if _allocate(self.fd, 0, _INITIAL_BYTES):
            try:
                self._map = mmap.mmap(self.fd, _INITIAL_BYTES)
                self._size = _INITIAL_BYTES
            except OSError:  # no memory for a map: written, not mapped
                os.ftruncate(self.fd, 0)

    def append(self, row: Any) -> None:
        """Append a span's encoded rows."""
        self.append_record(_JSON, encode_json(row).encode("utf-8", "replace"))

    def append_record(self, tag: bytes, payload: bytes) -> None:
        data = _HEAD.pack(tag, len(payload)) + payload
        with self._lock:
            if self.closed:
                return
            end = self._offset + len(data)
            if end > self._size and self._map is not None:
                size = self._size
                while size < end:
                    size *= 2
                if _allocate(self.fd, self._size, size - self._size):
                    self._map.resize(size)
                    self._size = size
                else:  # from here on, written: what the map holds is in the file already
                    self._map.close()
                    self._map = None
                    os.ftruncate(self.fd, self._offset)  # the space allocated and never written, given back
            if self._map is not None:
                self._map[self._offset : end] = data
                self._offset = end
                return
            try:
                written = os.pwrite(self.fd, data, self._offset)
            except OSError as e:
                written = -1
                _lost(e)
            if written == len(data):
                self._offset = end
            else:  # a record cut short must not stay where the next one goes
                if written >= 0:
                    _lost(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
                try:
                    os.ftruncate(self.fd, self._offset)
                except OSError:
                    pass

    def close(self) -> None:
        """Cut the file to what was written (it stays on disk)."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            if self._map is not None:
                self._map.close()
            try:
                os.ftruncate(self.fd, self._offset)
            finally:
                os.close(self.fd)


def _allocate(fd: int, offset: int, length: int) -> bool:
    """Whether the file system has given `fd` the bytes [offset, offset + length) (so a map over them
    cannot fault); False on a full disk or where it cannot say (then the file is written, not mapped)."""
    allocate = getattr(os, "posix_fallocate", None)
    if allocate is None:
        return False
    try:
        allocate(fd, offset, length)
        return True
    except OSError:
        return False


def _lost(error: OSError) -> None:
    warn_once("spool", f"could not write to the spool ({error.strerror or error}); spans recorded from now on may be "
                       "lost, the script runs on")


class _SegmentDone:
    """Queued after the last row of a full spool segment: once those rows are in SQLite, it can go."""

    def __init__(self, path: Path):
        self.path = path


class _TraceDone:
    """Queued after a split trace's last span: once they are in SQLite, the trace's totals can be summed."""

    def __init__(self, trace: Any):
        self.trace = trace


class _Begun:
    """Queued (thread writer) when a split trace begins: its row is stored before the spans after it."""

    def __init__(self, fields: dict[str, Any]):
        self.fields = fields


def begun_traces(records: list[tuple[bytes, bytes]]) -> list[dict[str, Any]]:
    """The trace rows `B` records hold (a record a kill cut short, or not a JSON object, is skipped)."""
    return _trace_fields(records, _BEGIN)


def ended_traces(records: list[tuple[bytes, bytes]]) -> list[Any]:
    """The traces `E` records say have ended, as `StoreWriter.finish_traces` takes them."""
    from llmtrace.model import Trace

    return [Trace(name="", start_us=0, **{f: fields.get(f) for f in _ENDED_FIELDS}) for fields in _trace_fields(records, _END)]


def _trace_fields(records: list[tuple[bytes, bytes]], kind: bytes) -> list[dict[str, Any]]:
    out = []
    for tag, payload in records:
        if tag == kind:
            try:
                fields = json.loads(payload.decode("utf-8", "replace"))
            except ValueError:
                continue
            if isinstance(fields, dict) and isinstance(fields.get("id"), str):
                out.append(fields)
    return out


class BatchStore:
    """Stores a batch of spool rows in one transaction, then deletes the spool segments it emptied and
    finishes the traces that ended after them (`run --split`). A failure is reported once; the spool
    keeps what could not be stored, and the next llmtrace command loads it."""

    def __init__(self, writer: StoreWriter, directory: Path):
        self.writer, self.directory = writer, directory
        self.failed = False

    def store(self, rows: list[Any], done: list[Path], ended: list[Any], begun: list[dict[str, Any]] | None = None) -> None:
        for what, write, items in (("traces", self.writer.begin_traces, begun), ("spans", self.writer.write_rows, rows)):
            if not items:
                continue
            try:
                write(items)
            except Exception as e:
                if not self.failed:
                    print(f"llmtrace: warning: could not write {what} to the store ({e}); they are kept in "
                          f"{self.directory} and loaded by the next llmtrace command", file=sys.stderr)
                self.failed = True
        if not self.failed:
            for path in done:
                path.unlink(missing_ok=True)
        if not ended:
            return
        try:  # after the rows of the batch: their spans are all in
            self.writer.finish_traces(ended)
            return
        except Exception:
            pass
        for trace in ended:  # one at a time: one that fails costs itself alone
            try:
                self.writer.finish_trace(trace)
            except Exception as e:  # left 'running': shown as killed, and finished by the run's end
                print(f"llmtrace: warning: could not finish trace {trace.id} ({e})", file=sys.stderr)


class _Spooler:
    """The traced program's side of a spooling exporter: each finished span is appended to the spool
    in the thread that ended it, then handed on (`_handed`) to whatever copies it into SQLite.

    The spool is written in segments of about 2 MiB: a full one is unmapped and, once its rows are
    committed, deleted, so a long run holds neither memory nor disk for spans SQLite already has.
    """

    def __init__(self, writer: StoreWriter, directory: Path, trace_id: str):
        self.writer = writer
        self.redactor = writer.redactor
        self.snapshot, self._snapshot_rows = writer.encoder.snapshot, writer.encoder.snapshot_rows
        self.directory, self.trace_id = directory, trace_id
        self._segment = 0
        self.file = SpoolFile(self._segment_path(0))
        self.path = self.file.path
        self._lock = threading.RLock()  # re-entered when a signal handler finishes the run

    def _segment_path(self, n: int) -> Path:
        return segment_path(self.directory, self.trace_id, n)

    # The Recorder calls this in the thread that ended the span.
    def write_span(self, span: Span) -> None:
        blob = self.snapshot(span)
        if blob is not None:  # safe on disk as it is: the copier encodes it
            tag, item, data = _SNAPSHOT, blob, blob
        else:  # encoded (and redacted) here: the spool record and the SQLite rows are the same values
            item = self.writer.rows(span)
            tag, data = _JSON, encode_json(item).encode("utf-8", "replace")
        self._append(tag, data, item)

    def _append(self, tag: bytes, data: bytes, item: Any) -> None:
        with self._lock:  # file order = hand-over order, so a segment's end follows its last row
            file = self.file
            if file.closed:
                return
            file.append_record(tag, data)
            self._handed(item)
            if file._offset >= _SEGMENT_BYTES:
                self._segment += 1
                self.file = SpoolFile(self._segment_path(self._segment))
                file.close()
                self._segment_full(file.path)

    def start_trace(self, trace: Any) -> None:
        """A trace of this run begins (`run --split`): its row goes by the spool, before its spans, so the
        traced program never waits on SQLite for it. Its text is redacted here, as a JSON span's is."""
        fields = self.writer.trace_fields(trace)
        self._append(_BEGIN, encode_json(fields).encode("utf-8", "replace"), _Begun(fields))

    def end_trace(self, trace: Any) -> None:
        """A trace of this run ended (`run --split`): finished by whoever stores the spool, after its spans."""
        fields = {f: getattr(trace, f) for f in _ENDED_FIELDS}
        fields["error"], fields["traceback"] = self.writer._text(trace.error), self.writer._text(trace.traceback)
        self._append(_END, encode_json(fields).encode("utf-8", "replace"), None)

    def _handed(self, item: Any) -> None:
        raise NotImplementedError

    def _segment_full(self, path: Path) -> None:
        raise NotImplementedError


def segment_path(directory: Path, trace_id: str, n: int) -> Path:
    return directory / (f"{trace_id}.spool" if n == 0 else f"{trace_id}.s{n}.spool")


class SpoolingWriter(_Spooler):
    """Exporter: spool record now, SQLite soon after, from a writer thread of this process;
    `close()` drains and removes the spool. (`HelperSpoolingWriter` does the same from a process
    of its own; this one is for where that cannot run.)"""

    def __init__(self, writer: StoreWriter, directory: Path, trace_id: str):
        super().__init__(writer, directory, trace_id)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._store = BatchStore(writer, directory)
        self._closing = threading.Event()  # ends the linger at once: a run's end does not wait for it
        self._thread = threading.Thread(target=self._run, name="llmtrace-writer", daemon=True)
        self._thread.start()

    def _handed(self, item: Any) -> None:
        self._queue.put(item)

    def _segment_full(self, path: Path) -> None:
        self._queue.put(_SegmentDone(path))

    def finish_trace(self, trace: Any) -> None:
        """Finish a trace of this run (`run --split`) once the spans queued before it are stored."""
        self._queue.put(_TraceDone(trace))

    def _run(self) -> None:
        stop = False
        while not stop:
            batch = gather(self._queue, self._closing, _BATCH)
            if _STOP in batch:
                stop = True
                batch = [b for b in batch if b is not _STOP]
            done = [b.path for b in batch if isinstance(b, _SegmentDone)]
            ended = [b.trace for b in batch if isinstance(b, _TraceDone)]
            begun = [b.fields for b in batch if isinstance(b, _Begun)]
            items = [b for b in batch if not isinstance(b, (_SegmentDone, _TraceDone, _Begun))]
            self._store.store([self._snapshot_rows(b) if isinstance(b, bytes) else b for b in items], done, ended, begun)

    def close(self) -> None:
        """Write everything still queued, then remove the spool if the store has it all."""
        self._closing.set()
        self._queue.put(_STOP)
        self._thread.join(timeout=60)
        with self._lock:
            self.file.close()
        if not self._store.failed and not self._thread.is_alive():
            try:
                self.file.path.unlink()
            except OSError:
                pass


class ChildSpool:
    """Exporter for a child process of a traced run: spans go to a spool file of its own only (no
    SQLite connection crosses a fork); the parent, or the next llmtrace command, loads it."""

    def __init__(self, directory: Path, trace_id: str, redactor: Any):
        from llmtrace.store.writer import RowEncoder

        self.rows = RowEncoder(redactor).rows
        self.file = SpoolFile(directory / f"{trace_id}.{os.getpid()}.spool")

    def write_span(self, span: Span) -> None:
        self.file.append(self.rows(span))

    def close(self) -> None:
        self.file.close()


def decode_records(records: list[tuple[bytes, bytes]], encoder: Any) -> list[tuple[list[Any], list[Any] | None]]:
    """The SQLite rows of spool records (`encoder`: a RowEncoder); a record cut short by a kill is skipped."""
    rows = []
    for tag, payload in records:
        try:
            if tag in _NOT_ROWS:
                continue
            if tag == _SNAPSHOT:
                rows.append(encoder.snapshot_rows(payload))
            else:
                values, row_payload = json.loads(payload.decode("utf-8", "replace"))
                rows.append((values, row_payload))
        except (ValueError, TypeError, EOFError):
            continue
    return rows


def store_answers(records: list[tuple[bytes, bytes]]) -> None:
    """Write the response-cache answers among spool records (`A`: a run's cache handed them over) to their cache."""
    if not any(tag in (_ANSWER, _PICKLED) for tag, _ in records):
        return
    from llmtrace.store.cache import decode_answer, write_answers

    answers = []
    for tag, payload in records:
        if tag == _ANSWER:
            answer = decode_answer(payload)
            if answer is not None:  # else damaged: that answer goes uncached
                answers.append(answer)
        elif tag == _PICKLED:
            warn_once("spool pickle", "a spool holds response-cache answers in an older format (pickle); they are skipped")
    if answers:
        write_answers(answers)


def open_caches() -> set[Any]:
    """The places of the response caches open for `store_answers` now (to keep, in `close_caches`)."""
    cache = sys.modules.get("llmtrace.store.cache")
    return set(cache._opened) if cache is not None else set()


def close_caches(keep: set[Any] | frozenset[Any] = frozenset()) -> None:
    """Close the response caches `store_answers` opened, but those whose place is in `keep` (open
    before: a run's own cache, which it adopted)."""
    if "llmtrace.store.cache" in sys.modules:
        sys.modules["llmtrace.store.cache"].close_opened(keep)


def _load(db: sqlite3.Connection, path: Path, redactor: Any) -> int:
    from llmtrace.redact import Redactor
    from llmtrace.store.writer import RowEncoder

    redactor = redactor or Redactor()
    try:
        data = path.read_bytes().rstrip(b"\x00")  # zeros: space never written
    except FileNotFoundError:  # a killed run's helper removed it, its rows stored
        return 0
    if path.suffix == ".jsonl":  # an earlier version's spool: one JSON line a span
        records = [(_JSON, line) for line in data.splitlines()]
    else:
        records = read_records(data)
    rows = decode_records(records, RowEncoder(redactor))
    store_answers(records)
    begun, ended = begun_traces(records), ended_traces(records)
    if begun:
        StoreWriter(db, redactor).begin_traces(begun)
    if rows:
        StoreWriter(db, redactor).write_rows(rows)
    if ended:  # after their spans
        StoreWriter(db, redactor).finish_traces(ended)
    path.unlink(missing_ok=True)
    return len(rows)


def _spools(directory: Path, prefix: str = "") -> list[Path]:
    """The spool files in `directory` named `prefix`…`suffix` (`glob(prefix + "*" + suffix)`, without
    the pattern compiled each call: a run's end asks with its own trace id)."""
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    return [directory / name for suffix in SUFFIXES for name in names
            if name.startswith(prefix) and name.endswith(suffix) and len(name) >= len(prefix) + len(suffix)]


def load_children(db: sqlite3.Connection, directory: Path, trace_id: str, redactor: Any = None) -> int:
    """Load the spools of a run's child processes that have ended; returns spans loaded."""
    from llmtrace.store.procs import pid_alive

    total, kept = 0, open_caches()
    try:
        for path in _spools(directory, f"{trace_id}."):
            pid = path.name.split(".")[1]
            if pid.isdigit() and pid_alive(int(pid)):
                continue  # a child that outlives the run: the next command loads it
            total += _load(db, path, redactor)
    finally:
        close_caches(kept)  # the caches the children's answers went to
    return total


def recover(db: sqlite3.Connection, directory: Path, redactor: Any = None) -> int:
    """Load spools of runs that are gone (killed) into the store; returns spans recovered."""
    if not directory.is_dir():
        return 0
    from llmtrace.store.procs import pid_alive

    total, kept = 0, open_caches()
    try:
        for path in _spools(directory):
            trace_id, _, rest = path.name.partition(".")
            first = rest.split(".")[0]
            child_pid = first if first.isdigit() else ""  # <trace>.<pid>.spool, <trace>.<pid>.s<n>.spool
            if child_pid.isdigit() and pid_alive(int(child_pid)):
                continue  # a child process still writing
            row = db.execute("SELECT status, pid FROM traces WHERE id = ?", (trace_id,)).fetchone()
            if row is not None and row[0] == "running" and pid_alive(row[1]):
                continue  # still being written
            total += _load(db, path, redactor)
    finally:
        close_caches(kept)  # the caches a killed run's answers went to (a run's own, adopted before, stays open)
    return total
