"""Durable, cheap span recording: an append-only spool file plus a group-committing writer thread.

A finished span is appended to `<home>/spool/<trace-id>.jsonl` in the thread that ended it. The
file is memory-mapped (shared), so appending is a memory copy with no system call and no release
of the GIL, yet the bytes belong to the kernel's page cache at once: a kill of the process cannot
lose them. The file grows in steps; unused space is zero bytes. A
writer thread copies spans into SQLite in batches, one commit per batch, so `ls` and `show` see a
running trace within milliseconds. When the run finishes, the spool file is removed. A spool left
behind by a killed run is loaded into the store by the next llmtrace command (`recover`).
"""

from __future__ import annotations

import json
import mmap
import os
import queue
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

from llmtrace.model import Span
from llmtrace.store.writer import StoreWriter, encode_json

_STOP = object()
_BATCH = 2048
_INITIAL_BYTES = 1 << 20
_LINGER_S = 0.005  # how stale the SQLite copy of a running trace may be


def spool_dir(home: Path) -> Path:
    return home / "spool"


class SpoolingWriter:
    """Exporter: spool line now, SQLite soon after; `close()` drains and removes the spool."""

    def __init__(self, writer: StoreWriter, directory: Path, trace_id: str):
        self.writer = writer
        self.redactor = writer.redactor
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = directory / f"{trace_id}.jsonl"
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        self._size = _INITIAL_BYTES
        os.ftruncate(self.fd, self._size)
        self._map = mmap.mmap(self.fd, self._size)
        self._offset = 0
        self._append_lock = threading.Lock()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._failed = False
        self._thread = threading.Thread(target=self._run, name="llmtrace-writer", daemon=True)
        self._thread.start()

    # The Recorder calls this in the thread that ended the span.
    def write_span(self, span: Span) -> None:
        # Encoded (and redacted) once: the spool line and the SQLite rows are the same values.
        row = self.writer.rows(span)
        data = (encode_json(row) + "\n").encode("utf-8", "replace")
        with self._append_lock:
            end = self._offset + len(data)
            if end > self._size:
                self._grow(end)
            self._map[self._offset : end] = data
            self._offset = end
        self._queue.put(row)

    def _grow(self, needed: int) -> None:
        while self._size < needed:
            self._size *= 2
        os.ftruncate(self.fd, self._size)
        self._map.resize(self._size)

    def _run(self) -> None:
        stop = False
        while not stop:
            batch = [self._queue.get()]
            if batch[0] is not _STOP:
                time.sleep(_LINGER_S)  # let a burst gather: one commit for many spans
            while len(batch) < _BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if _STOP in batch:
                stop = True
                batch = [b for b in batch if b is not _STOP]
            if not batch:
                continue
            try:
                self.writer.write_rows(batch)
            except Exception as e:  # the spool still has them; the next command loads them
                if not self._failed:
                    print(f"llmtrace: warning: could not write spans to the store ({e}); they are kept in "
                          f"{self.path} and loaded by the next llmtrace command", file=sys.stderr)
                self._failed = True

    def close(self) -> None:
        """Write everything still queued, then remove the spool if the store has it all."""
        self._queue.put(_STOP)
        self._thread.join(timeout=60)
        with self._append_lock:
            self._map.close()
            os.ftruncate(self.fd, self._offset)
            os.close(self.fd)
        if not self._failed and not self._thread.is_alive():
            try:
                self.path.unlink()
            except OSError:
                pass


def recover(db: sqlite3.Connection, directory: Path, redactor: Any = None) -> int:
    """Load spools of runs that are gone (killed) into the store; returns spans recovered."""
    if not directory.is_dir():
        return 0
    from llmtrace.redact import Redactor
    from llmtrace.store.queries import pid_alive

    total = 0
    for path in directory.glob("*.jsonl"):
        trace_id = path.stem
        row = db.execute("SELECT status, pid FROM traces WHERE id = ?", (trace_id,)).fetchone()
        if row is not None and row[0] == "running" and pid_alive(row[1]):
            continue  # still being written
        rows = []
        text = path.read_bytes().rstrip(b"\x00").decode("utf-8", "replace")  # zeros: space never written
        for line in text.splitlines():
            try:
                values, payload = json.loads(line)
            except ValueError:
                continue  # a line cut short by the kill
            rows.append((values, payload))
        if rows:
            StoreWriter(db, redactor or Redactor()).write_rows(rows)
            total += len(rows)
        path.unlink(missing_ok=True)
    return total
