"""The spans a running trace has open, published for `show --follow`.

Spans reach the store when they end; while a run goes on, its open spans (an agent mid-step, an LLM
call waiting for its answer) exist only in the traced process. A thread there writes them a few
times a second, when they change, to `<home>/live/<trace>.json` (names and times only, no payloads;
owner-only, replaced atomically), and the file is removed when the run ends. A reader ignores the
file of a run that is no longer running.

Only spans open for a whole interval are published: one that ends sooner reaches the store before a
reader could have seen it in flight, and a loop of fast calls would otherwise rewrite the file at
every tick, for spans already gone.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from llmtrace.clock import timer_scale
from llmtrace.model import Span, Status
from llmtrace.clock import now_us

INTERVAL_S = 0.2 * timer_scale()
_FIELDS = ("id", "trace_id", "parent_id", "kind", "name", "start_us", "model_requested", "streamed", "first_token_us")


def live_path(home: Path, trace_id: str) -> Path:
    return home / "live" / f"{trace_id}.json"


class InFlightPublisher:
    """In the traced process: a daemon thread that publishes `recorder`'s open spans to `path`."""

    def __init__(self, recorder: Any, path: Path, interval_s: float = INTERVAL_S, on_tick: Any = None):
        self.recorder, self.path, self.interval = recorder, path, interval_s
        self.on_tick = on_tick  # also called at every tick (the spool starts its helper when due)
        self._stop = threading.Event()
        self._last: Any = None
        self._thread = threading.Thread(target=self._run, name="llmtrace-inflight", daemon=True)

    def start(self) -> "InFlightPublisher":
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError:
            return self  # nowhere to publish: follow sees finished spans only
        self._thread.start()
        return self

    def _snapshot(self, at_us: int | None = None) -> list[list[Any]]:
        """The spans open since at least an interval before `at_us` (default: now)."""
        since = (now_us() if at_us is None else at_us) - int(self.interval * 1e6)
        return [[getattr(s, f) for f in _FIELDS] for s in self.recorder.open_spans() if s.start_us <= since]

    def publish(self, at_us: int | None = None) -> None:
        rows = self._snapshot(at_us)
        if rows == self._last:
            return
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=".tmp", dir=self.path.parent)  # 0600, a new file
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(rows, f)
            os.replace(tmp, self.path)
        except BaseException:
            os.unlink(tmp)
            raise
        self._last = rows

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.publish()
            except Exception:  # a full disk or a vanished folder must not disturb the run
                pass
            if self.on_tick is not None:
                try:
                    self.on_tick()
                except Exception:  # pragma: no cover - it reports its own failures
                    pass

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        try:
            self.path.unlink()
        except OSError:
            pass


def read_in_flight(home: Path, trace_id: str, run_id: str | None = None) -> list[Span]:
    """The open spans of a running trace (of its run's file when split), as running Spans; [] when none."""
    key = run_id or trace_id
    rows: list[Any] = []
    try:
        names = [n for n in os.listdir(home / "live") if n == f"{key}.json" or
                 (n.startswith(f"{key}.") and n.endswith(".json"))]  # <trace>.<pid>.json: a child process's
    except OSError:
        return []
    for name in names:
        try:
            rows += json.loads((home / "live" / name).read_text())
        except (OSError, ValueError):
            continue
    out = []
    for row in rows:
        try:
            span = Span(**dict(zip(_FIELDS, row)))
        except TypeError:
            continue
        if span.trace_id == trace_id or (run_id is not None and trace_id == run_id):  # a run: its traces' too
            span.status = Status.RUNNING.value
            out.append(span)
    return out
