"""Response cache (diskcache): record and replay provider answers, exact by request, optionally semantic.

Record/replay, like a cassette: the n-th request of a run with a given body is answered by the n-th
answer recorded for that body, so a re-run replays an earlier run in order (resamples and retries
included) while within one run an identical request still goes to the provider. An entry is the
HTTP answer itself (status, headers, body bytes; a stream as its events), so the SDK parses a
replay exactly as it parsed the live answer.

The key is a hash of the request body as sent (model, messages, tools, sampling parameters, stream …)
and the endpoint's URL; fields that don't change the answer (stream_options, user, metadata) are
left out. Neither key nor value holds the API key.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import sys
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import llmtrace.clock as clock
from llmtrace.errors import warn_once
from llmtrace.redact import redact_headers
from llmtrace.store.db import in_lists, insert_rows

_IGNORED = {"stream_options", "user", "metadata", "store", "extra_headers", "timeout"}
# 3: entries are bytes (`encode_entry`) and the semantic index JSON text, never pickles; older entries
# simply miss (the version is part of every key).
VERSION = 3
_HANDED_KEPT = 64  # answers handed to the helper process kept in memory (`set`): ~200 ms of a fast loop
# Read-ahead (`_read`): a found answer comes with the answers stored after it, up to this many rows
# and bytes; the window doubles while they are used and halves while they are not.
_AHEAD_FIRST, _AHEAD_MAX, _AHEAD_BYTES = 16, 256, 8 << 20

_INSERT_SQL = ("INSERT INTO Cache(key, raw, store_time, expire_time, access_time, access_count, tag, size, mode, filename,"
               " value) VALUES ")
_AHEAD_SQL = (
    "SELECT key, raw, expire_time, mode, filename, value FROM Cache"
    " WHERE rowid >= (SELECT rowid FROM Cache WHERE key = ? AND raw = ?) ORDER BY rowid LIMIT ?"
)
_MODE_RAW, _MODE_PICKLE = 1, 4  # diskcache's value modes (diskcache.core.MODE_*)


@dataclass
class CacheSettings:
    """Where and how the response cache keeps answers (exact and semantic)."""

    enabled: bool = True
    directory: Path | None = None
    ttl_s: float | None = None
    size_limit_bytes: int = 1 << 30
    threshold: float = 0.95
    embedding_model: str = "text-embedding-3-small"
    semantic_max_messages: int = 6


# -- what an entry is on disk: bytes, never a pickle --------------------------------------------------
# An answer: magic, the length of a JSON head (status, headers, sse, stored_s, the parts' sizes), the
# head, then the parts' bytes one after the other. Read back with nothing but json and slicing.
_MAGIC = b"LTA3"
_LEN = struct.Struct("<I")


def encode_entry(entry: dict[str, Any]) -> bytes:
    parts = entry["parts"]
    head = json.dumps({"status": entry["status"], "headers": entry["headers"], "sse": bool(entry["sse"]),
                       "stored_s": entry["stored_s"], "sizes": [len(p) for p in parts]},
                      separators=(",", ":")).encode()
    return b"".join([_MAGIC, _LEN.pack(len(head)), head, *parts])


def decode_entry(blob: Any) -> dict[str, Any] | None:
    """The answer `encode_entry` wrote, or None for anything else (an older format, a damaged row)."""
    if not isinstance(blob, bytes) or not blob.startswith(_MAGIC):
        return None
    try:
        (size,) = _LEN.unpack_from(blob, len(_MAGIC))
        at = len(_MAGIC) + _LEN.size
        head = json.loads(blob[at : at + size])
        at += size
        parts = []
        for n in head["sizes"]:
            if not isinstance(n, int) or n < 0:
                return None
            parts.append(blob[at : at + n])
            at += n
        headers = head["headers"]
        if at != len(blob) or not isinstance(headers, list) or not all(
                isinstance(h, list) and len(h) == 2 and isinstance(h[0], str) and isinstance(h[1], str) for h in headers):
            return None
        return {"v": VERSION, "status": int(head["status"]), "headers": headers, "parts": parts,
                "sse": bool(head["sse"]), "stored_s": float(head["stored_s"])}
    except (ValueError, KeyError, TypeError, struct.error):
        return None


def encode_answer(place: tuple[str, int, float | None], key: str, entry: dict[str, Any]) -> bytes:
    """An answer handed over for another process to store (a spool record): where, which key, the entry."""
    head = json.dumps([list(place), key], separators=(",", ":")).encode()
    return _LEN.pack(len(head)) + head + encode_entry(entry)


def decode_answer(blob: bytes) -> tuple[tuple[str, int, float | None], str, dict[str, Any]] | None:
    try:
        (size,) = _LEN.unpack_from(blob, 0)
        (directory, size_limit, ttl_s), key = json.loads(blob[_LEN.size : _LEN.size + size])
        place = (str(directory), int(size_limit), None if ttl_s is None else float(ttl_s))
    except (ValueError, TypeError, struct.error):
        return None
    entry = decode_entry(bytes(blob[_LEN.size + size :]))
    if entry is None or not isinstance(key, str):
        return None
    return place, key, entry


def _refused(directory: Any) -> None:
    """A pickled entry was found (an older llmtrace's, or planted): never unpickled; said once a process."""
    warn_once("cache pickle", f"the response cache at {directory} holds entries in an older format (pickle); they are "
                              "ignored (`llmtrace cache clear` removes them)")


def _inside(filename: Any) -> bool:
    return isinstance(filename, str) and not os.path.isabs(filename) and ".." not in Path(filename).parts


_disk_class: Any = None


def _safe_disk() -> Any:
    """diskcache's Disk without pickle: keys and values are str or bytes, a pickled key or value read from
    the cache is refused (a miss), and a value's file must lie inside the cache folder."""
    global _disk_class
    if _disk_class is None:
        import diskcache

        class SafeDisk(diskcache.Disk):  # type: ignore[misc]
            def put(self, key: Any) -> Any:
                if type(key) not in (str, bytes):
                    raise TypeError(f"cache keys are text, not {type(key).__name__}")
                return super().put(key)

            def get(self, key: Any, raw: bool) -> Any:
                if not raw:
                    _refused(self._directory)
                    return None
                return super().get(key, raw)

            def store(self, value: Any, read: bool, key: Any = diskcache.core.UNKNOWN) -> Any:
                if type(value) not in (str, bytes):
                    raise TypeError(f"cache values are bytes or text, not {type(value).__name__}")
                return super().store(value, read, key=key)

            def fetch(self, mode: int, filename: Any, value: Any, read: bool) -> Any:
                if mode == _MODE_PICKLE:
                    _refused(self._directory)
                    return None
                if filename is not None and not _inside(filename):
                    return None
                return super().fetch(mode, filename, value, read)

            def remove(self, file_path: Any) -> None:
                if _inside(file_path):
                    super().remove(file_path)

        _disk_class = SafeDisk
    return _disk_class


def _open_store(directory: Path, **settings: Any) -> Any:
    import diskcache

    return diskcache.Cache(str(directory), disk=_safe_disk(), **settings)


def _check_folder(directory: Path) -> Path:
    from llmtrace.home import private_dir

    return private_dir(directory, "the response cache's folder")


def _key_encoder() -> Any:
    """`json.dumps(value, sort_keys=True, default=str)` for the cache key, as fast as it goes: json's C
    encoder made once (`JSONEncoder.encode` makes one each call, half the cost of a small body's key).
    The same text exactly, or keys would change: checked here, with the plain encoder where it differs."""
    plain = json.JSONEncoder(sort_keys=True, default=str).encode
    try:
        from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]

        # (markers, default, encoder, indent, key_separator, item_separator, sort_keys, skipkeys, allow_nan):
        # no circular check, as a request body is a plain copy (call._json_copy)
        made = c_make_encoder(None, str, encode_basestring_ascii, None, ": ", ", ", True, False, True)

        def fast(value: Any) -> str:
            return "".join(made(value, 0))

        probe = {"b": [1, 2.5, float("nan"), -1e300, None, True], "a": {"é": "ü\n\"", "z": [{}]}, "c": Path("p")}
        if fast(probe) == plain(probe):
            return fast
    except Exception:  # another Python's private API: the public one
        pass
    return plain


_KEY_JSON = _key_encoder()


def request_key(body: dict[str, Any], base_url: str) -> str:
    material = body if _IGNORED.isdisjoint(body) else {k: v for k, v in body.items() if k not in _IGNORED}
    blob = _KEY_JSON({"v": VERSION, "url": base_url.rstrip("/"), "body": material})
    return hashlib.sha256(blob.encode()).hexdigest()


def params_key(body: dict[str, Any], base_url: str) -> str:
    """Everything but the messages: a semantic hit needs the same model, parameters and tools."""
    return request_key({k: v for k, v in body.items() if k != "messages"}, base_url)


def prompt_text(messages: list[dict[str, Any]]) -> str:
    parts = []
    for m in messages:
        content = m.get("content")
        if isinstance(content, list):
            content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        parts.append(f"{m.get('role')}: {content or ''}")
    return "\n".join(parts)


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


class ResponseCache:
    def __init__(self, settings: CacheSettings):
        self.settings = settings
        assert settings.directory is not None
        _check_folder(settings.directory)
        db_file = settings.directory / "cache.db"
        if not db_file.exists():  # owner-only from the start; SQLite gives its WAL the same mode
            os.close(os.open(db_file, os.O_CREAT | os.O_WRONLY, 0o600))
        self.store = _open_store(
            settings.directory, size_limit=settings.size_limit_bytes, eviction_policy="least-recently-stored",
            timeout=30, disk_min_file_size=1 << 30,  # values live inside cache.db, not in loose files
            # Bounded memory in long runs: a 2 MiB page cache and no memory map (diskcache's defaults,
            # 32 MiB and 64 MiB, fill up as the cache grows and count against the script's RSS).
            sqlite_cache_size=512, sqlite_mmap_size=0,
            # No culling inside `set`: entries are written in batches, one transaction each, and culled
            # after the commit (`_write`). Inside a transaction the file has not shrunk yet, so a culling
            # `set` would go on evicting, the batch's own new entries included.
            cull_limit=0,
        )

        # Answers are written behind the call, by a thread of this process, in batches; `close()` waits
        # for them (every entry is on disk before the run ends). Until written, `get` finds them here.
        self._pending: dict[str, dict[str, Any]] = {}
        self._queue: Any = None
        self._thread: threading.Thread | None = None
        self._owner = os.getpid()
        self.write_behind = True  # off in child processes: a Pool worker may be ended before a thread could write
        # Where answers go instead of the writer thread, when the run has a helper process that stores
        # its spool (store.helper): `handoff(key, entry)` puts the answer in the spool (from that moment a
        # kill cannot lose it) and the helper writes it here. Set by the runner.
        self.handoff: Any = None
        # Applied to the answer's headers before it is kept (`set`); None: the traced run's own, as the store's.
        self.redactor: Any = None
        self._lock = threading.RLock()
        self._flushing = threading.Event()  # ends the linger at once
        self._ahead: dict[str, tuple[Any, ...]] = {}  # read ahead: "r:<key>" → its row, not yet decoded
        self._window = _AHEAD_FIRST
        self._ahead_used = False

    def get(self, key: str) -> dict[str, Any] | None:
        """The recorded answer {status, headers, parts, sse}, or None (missing, damaged or expired)."""
        entry = self._pending.get(key)
        if entry is None:
            entry = self._read("r:" + key)
        if not isinstance(entry, dict) or entry.get("v") != VERSION:
            return None
        ttl = self.settings.ttl_s
        if ttl is not None and clock.now() - entry.get("stored_s", 0) > ttl:
            return None
        return entry

    def _read(self, db_key: str) -> dict[str, Any] | None:
        """The answer stored for `db_key`, or None. A replay asks for answers in the order they were
        stored, so the rows stored after the one asked for are read in the same query and kept (undecoded)
        for the calls that follow: one SQLite read, not one a call. The answers are the same either way:
        an entry never changes once stored (a newer answer for the same key is found in `_pending`
        first), and diskcache's expiry is checked when a row is used."""
        row = self._ahead.pop(db_key, None)
        if row is not None:
            self._ahead_used = True
            return self._value(db_key, *row)
        used = self._ahead_used
        window = min(self._window * 2, _AHEAD_MAX) if used else max(self._window // 2, 1)
        try:
            rows = self.store._sql(_AHEAD_SQL, (db_key, True, window)).fetchall()
        except Exception:  # not diskcache's table as this code knows it: a plain get
            return decode_entry(self.store.get(db_key))
        if not rows:  # not stored: the rows read ahead stand for the calls after this one
            return None
        self._window, self._ahead_used = window, False
        ahead: dict[str, tuple[Any, ...]] = {}
        size = 0
        for key, raw, expire_time, mode, filename, value in rows[1:]:
            if raw and isinstance(key, str) and key.startswith("r:") and filename is None and size < _AHEAD_BYTES:
                ahead[key] = (expire_time, mode, filename, value)
                size += len(value) if isinstance(value, (bytes, str)) else 0
        self._ahead = ahead
        if rows[0][0] != db_key:  # pragma: no cover - the subquery's own row comes first
            return None
        return self._value(db_key, *rows[0][2:])

    def _value(self, db_key: str, expire_time: float | None, mode: int, filename: str | None,
               value: Any) -> dict[str, Any] | None:
        """The answer in `db_key`'s row as diskcache's get reads it: None once expired (diskcache's own
        clock, real time); a value kept in a file of its own, or a row that no longer decodes, read by
        diskcache itself (whose Disk refuses pickles)."""
        if expire_time is not None and expire_time <= time.time():
            return None
        if filename is None and mode == _MODE_RAW:
            entry = decode_entry(bytes(value) if isinstance(value, (bytes, memoryview)) else value)
            if entry is not None:
                return entry
        return decode_entry(self.store.get(db_key))

    def _redactor(self) -> Any:
        """The traced run's redactor (the store's: it knows the keys the run's clients hold), else one
        from the environment."""
        if self.redactor is not None:
            return self.redactor
        context = sys.modules.get("llmtrace.capture.context")
        recorder = context.recorder if context is not None else None
        if recorder is not None:
            return recorder.redactor
        from llmtrace.redact import Redactor

        self.redactor = Redactor.from_environ()
        return self.redactor

    def set(self, key: str, status: int, headers: list[list[str]], parts: list[bytes], sse: bool) -> None:
        headers = redact_headers(self._redactor(), headers)
        entry = {"v": VERSION, "status": status, "headers": headers, "parts": parts, "sse": sse, "stored_s": clock.now()}
        if not self.write_behind or os.getpid() != self._owner:  # a child process (a fork's writer stayed in the parent)
            self._write([(key, entry)])
            return
        if self.handoff is not None:
            with self._lock:
                # Kept for a read of it later in the run (a semantic hit) until the helper has surely
                # stored it: the newest answers only, the helper commits what 200 ms gathered.
                self._pending[key] = entry
                if len(self._pending) > _HANDED_KEPT:
                    del self._pending[next(iter(self._pending))]
            self.handoff(key, entry)
            return
        with self._lock:
            if self._thread is None:
                import queue

                self._queue = queue.SimpleQueue()
                self._thread = threading.Thread(target=self._run, name="llmtrace-cache-writer", daemon=True)
                self._thread.start()
            self._pending[key] = entry
        self._queue.put((key, entry))

    def adopt(self) -> None:
        """Answers for this cache that this process stores from a spool (`write_answers`) go through
        this instance, not a second one opened for them."""
        _opened.setdefault(self.place(), self)

    def place(self) -> tuple[str, int, float | None]:
        """What another process needs to open this cache as it is used here (`from_place`)."""
        settings = self.settings
        return str(settings.directory), settings.size_limit_bytes, settings.ttl_s

    @classmethod
    def from_place(cls, place: tuple[str, int, float | None]) -> ResponseCache:
        directory, size_limit, ttl_s = place
        return cls(CacheSettings(directory=Path(directory), size_limit_bytes=size_limit, ttl_s=ttl_s))

    def _write(self, items: list[tuple[str, dict[str, Any]]]) -> None:
        # diskcache's own expiry (real time) only reclaims space; `get` decides what has expired.
        expire = None if self.settings.ttl_s is None else self.settings.ttl_s + 60
        # One commit a batch (a commit costs more than an entry), then the least recently stored go
        # until the cache is within its size limit, one transaction at a time.
        self._insert(items, expire)
        self.store.cull()

    def _insert(self, items: list[tuple[str, dict[str, Any]]], expire: float | None) -> None:
        """diskcache's `set` of every item, in one transaction of a few statements. `set` makes a query
        and an insert an entry, and sqlite3 lets go of the GIL around each: this thread then waits for
        the traced program's thread to hand the GIL back, twice an answer. The rows are the ones `set`
        writes (diskcache's own key and value encoding; its table's triggers keep count and size); an
        answer stored before under the same key is first deleted by diskcache, as `set` replaces it."""
        store, disk = self.store, self.store._disk
        now = time.time()
        expire_time = None if expire is None else now + expire
        rows: dict[Any, tuple[Any, ...]] = {}  # the last answer of a key wins, as with one set after another
        for key, entry in items:
            db_key, raw = disk.put("r:" + key)
            size, mode, filename, value = disk.store(encode_entry(entry), False, key="r:" + key)
            rows[db_key] = (db_key, raw, now, expire_time, now, 0, None, size, mode, filename, value)
        with store.transact():
            con = store._con
            keys = list(rows)
            for chunk, marks in in_lists(keys):
                for (old,) in con.execute(f"SELECT key FROM Cache WHERE raw = 1 AND key IN ({marks})", chunk).fetchall():
                    store.delete(old)  # its file too, if it had one
            insert_rows(con, _INSERT_SQL, list(rows.values()))

    def _run(self) -> None:
        from llmtrace.store.batches import gather

        while True:
            items = gather(self._queue, self._flushing)
            stop = None in items
            items = [i for i in items if i is not None]
            if items:
                try:
                    self._write(items)
                except Exception as e:  # a full or broken cache must not break the run: those answers go uncached
                    _write_failed(e)
                with self._lock:
                    for key, entry in items:
                        if self._pending.get(key) is entry:
                            del self._pending[key]
            if stop:
                return

    def flush(self) -> None:
        """Wait until every answer handed to `set` is on disk."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None and os.getpid() == self._owner:
            self._flushing.set()
            self._queue.put(None)
            thread.join()
            self._flushing.clear()

    # -- semantic ---------------------------------------------------------------------------------
    def semantic_candidates(self, pkey: str) -> list[tuple[list[float], str]]:
        """(vector, key) of the answers stored for the same model and parameters: JSON text on disk."""
        value = self.store.get("s:" + pkey)
        try:
            entries = json.loads(value) if isinstance(value, str) else []
        except ValueError:
            return []
        if not isinstance(entries, list):
            return []
        return [(e[0], e[1]) for e in entries if isinstance(e, list) and len(e) == 2 and isinstance(e[0], list)
                and isinstance(e[1], str) and all(isinstance(x, (int, float)) for x in e[0])]

    def semantic_add(self, pkey: str, vector: list[float], key: str) -> None:
        with self.store.transact():
            entries = self.semantic_candidates(pkey)
            entries.append((vector, key))
            self.store.set("s:" + pkey, json.dumps(entries[-2000:]), expire=self.settings.ttl_s)

    def close(self) -> None:
        self.flush()
        self.store.close()


def _count_pickled(c: Any, directory: Path) -> int:
    """Rows whose key or value is a pickle (an older llmtrace's, or planted): counted, never read."""
    n = c._sql("SELECT count(*) FROM Cache WHERE raw = 0 OR mode = ?", (_MODE_PICKLE,)).fetchone()[0]
    if n:
        _refused(directory)
    return n


def stats(directory: Path) -> tuple[int, int]:
    """(responses stored, bytes on disk)."""
    _check_folder(directory)
    with _open_store(directory) as c:
        _count_pickled(c, directory)
        n = c._sql("SELECT count(*) FROM Cache WHERE raw = 1 AND key LIKE 'r:%'").fetchone()[0]
        return n, c.volume()


def clear(directory: Path, older_than_s: float | None) -> int:
    """Remove the answers (all, or those stored more than `older_than_s` ago, and any that no longer
    read); returns how many. Rows of an older format (pickled) go as well, unread."""
    _check_folder(directory)
    with _open_store(directory) as c:
        pickled = _count_pickled(c, directory)
        if older_than_s is None:
            n = c._sql("SELECT count(*) FROM Cache WHERE raw = 1 AND key LIKE 'r:%'").fetchone()[0] + pickled
            c.clear()
            return n
        cutoff = clock.now() - older_than_s
        gone = []
        rows = c._sql("SELECT rowid, raw, mode, filename, value FROM Cache WHERE raw = 0 OR mode = ? OR key LIKE 'r:%'",
                      (_MODE_PICKLE,)).fetchall()
        for rowid, raw, mode, filename, value in rows:
            entry = decode_entry(bytes(value)) if raw and mode == _MODE_RAW and isinstance(value, bytes) else None
            if entry is None or entry["stored_s"] < cutoff:
                gone.append((rowid, filename))
        with c.transact():
            for rowid, filename in gone:
                c._sql("DELETE FROM Cache WHERE rowid = ?", (rowid,))
                if filename is not None:
                    c._disk.remove(filename)
        return len(gone)


_opened: dict[tuple[str, int, float | None], ResponseCache] = {}


def _write_failed(error: BaseException) -> None:
    """A batch of answers could not be written: said once a process; those answers go uncached."""
    warn_once("cache write", f"could not write to the response cache ({type(error).__name__}: {error})")


def write_answers(answers: list[tuple[tuple[str, int, float | None], str, dict[str, Any]]]) -> None:
    """Store (place, key, entry) answers handed over by runs (`ResponseCache.handoff`): by the helper
    process as they come, or from a spool a run left. A cache that cannot be written is said once;
    those answers go uncached, as with the writer thread."""
    by_place: dict[tuple[str, int, float | None], list[tuple[str, dict[str, Any]]]] = {}
    for place, key, entry in answers:
        by_place.setdefault(tuple(place), []).append((key, entry))  # type: ignore[arg-type]
    for place, items in by_place.items():
        try:
            cache = _opened.get(place)
            if cache is None:
                cache = _opened[place] = ResponseCache.from_place(place)
            cache._write(items)
        except Exception as e:
            _write_failed(e)


def close_opened(keep: Collection[tuple[str, int, float | None]] = ()) -> None:
    """Close the caches `write_answers` opened (or a run adopted), but those whose place is in `keep`."""
    for place in [p for p in _opened if p not in keep]:
        _opened.pop(place).close()


def open_cache(settings: CacheSettings, quiet: bool = False) -> ResponseCache | None:
    """The cache, or None with one warning when it cannot be used (the run goes on uncached)."""
    if not settings.enabled:
        return None
    from llmtrace.errors import UserError

    try:
        return ResponseCache(settings)
    except UserError:  # a folder that is not the user's own: refused, not used uncached
        raise
    except Exception as e:  # a damaged or unwritable cache must not stop the run
        if not quiet:
            print(f"llmtrace: warning: response cache disabled ({type(e).__name__}: {e})", file=sys.stderr)
        return None
