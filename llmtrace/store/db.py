"""Opening the SQLite store: file permissions, WAL, migrations, and clear errors when it can't."""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterator

from llmtrace.errors import ExitCode, UserError
from llmtrace.store import schema
from llmtrace.store.schema import MIGRATIONS

BUSY_TIMEOUT_MS = 30_000


def busy_timeout_ms() -> int:
    try:  # how long a write waits for another process's lock before giving up
        return max(1, int(os.environ.get("LLMTRACE_BUSY_TIMEOUT_MS", BUSY_TIMEOUT_MS)))
    except ValueError:
        return BUSY_TIMEOUT_MS


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK if anything (even KeyboardInterrupt) escapes."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if db.in_transaction:  # SQLite has rolled back by itself after some errors (a full disk)
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


# Rows a statement inserts at most: 32 × 29 columns stays under the 999 variables older SQLite allows.
_ROWS_PER_STATEMENT = 32


def insert_rows(db: sqlite3.Connection, insert: str, rows: list[Any]) -> None:
    """`insert` ("INSERT … VALUES ") of `rows` (all of one width), up to 32 rows a statement, one
    SQLite step each.

    executemany steps once a row, and sqlite3 lets go of the GIL around every step: a writer thread
    then waits for the traced program's thread to hand the GIL back once a row, and every such
    hand-over costs that thread a wake-up and a switch (the futex calls of a traced run). Each
    statement is prepared once and kept in sqlite3's statement cache."""
    width = len(rows[0]) if rows else 0
    at, left = 0, len(rows)
    while left:
        # 32 rows, then the rest in powers of two: six statements of each kind at most. A cached
        # statement keeps its last bound values until it is next used, so the statements kept must be
        # few: one for every row count from 1 to 32 held ~2 MB of old payloads in a long run.
        count = _ROWS_PER_STATEMENT if left >= _ROWS_PER_STATEMENT else 1 << (left.bit_length() - 1)
        chunk = rows[at : at + count]
        db.execute(_values_sql(insert, width, count), [v for row in chunk for v in row])
        at, left = at + count, left - count


# Values bound in one `IN (…)` list at most: under the 999 variables older SQLite allows.
_IN_LIST = 500


def in_lists(values: list[Any]) -> Iterator[tuple[list[Any], str]]:
    """`values` 500 at a time, each with the `?, ?, …` of its `IN (…)` list."""
    for at in range(0, len(values), _IN_LIST):
        chunk = values[at : at + _IN_LIST]
        yield chunk, ", ".join("?" * len(chunk))


@functools.lru_cache(maxsize=128)
def _values_sql(insert: str, width: int, count: int) -> str:
    one = "(" + ", ".join("?" * width) + ")"
    return insert + ", ".join([one] * count)


def _connect(path: Path) -> sqlite3.Connection:
    timeout = busy_timeout_ms()
    db = sqlite3.connect(str(path), timeout=timeout / 1000, isolation_level=None, check_same_thread=False)
    db.execute(f"PRAGMA busy_timeout = {timeout}")
    db.execute("PRAGMA recursive_triggers = ON")  # INSERT OR REPLACE must tell the search index (schema m006)
    return db


def _prepare_file(path: Path) -> None:
    """Create the folder (owner-only) and an empty owner-only file so SQLite inherits the mode."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
            os.close(fd)
    except FileExistsError:
        pass
    except OSError as e:
        raise UserError(f"cannot create the trace store at {path}: {e.strerror}", ExitCode.STORE) from None
    if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK):
        raise UserError(f"the trace store at {path} is not writable", ExitCode.STORE)


def migrate(db: sqlite3.Connection) -> None:
    known = len(MIGRATIONS)
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > known:
        raise UserError(
            f"the trace store was written by a newer llmtrace (schema {version}, this one knows {known}); upgrade llmtrace",
            ExitCode.STORE,
        )
    if version == known:
        return
    db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_us INTEGER NOT NULL)")
    # One transaction for every pending migration (a new store applies them all: one commit, not one
    # each), a savepoint around each: one that fails is undone, the ones before it stand.
    db.execute("BEGIN IMMEDIATE")
    try:
        # Re-read under the write lock: another process may have just applied some.
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version == 0 and not db.execute("SELECT 1 FROM sqlite_master WHERE tbl_name != 'schema_migrations'").fetchone():
            version = _create_fresh(db)  # an empty store: made in one step
        for index, (name, fn) in enumerate(MIGRATIONS, start=1):
            if index <= version:
                continue
            db.execute("SAVEPOINT migration")
            try:
                fn(db)
                db.execute(
                    "INSERT INTO schema_migrations (name, applied_us) VALUES (?, ?)",
                    (name, time.time_ns() // 1000),
                )
                db.execute(f"PRAGMA user_version = {index}")
            except BaseException:
                db.execute("ROLLBACK TO migration")
                db.execute("RELEASE migration")
                db.execute("COMMIT")
                raise
            db.execute("RELEASE migration")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _create_fresh(db: sqlite3.Connection) -> int:
    """Make an empty store's schema in one step (schema.FRESH_SCHEMA): the version it is at, or 0 when
    it could not (an SQLite without FTS5), and the migrations are to be replayed one by one."""
    count = schema.FRESH_VERSION
    if count == 0 or len(MIGRATIONS) < count:
        return 0
    db.execute("SAVEPOINT fresh")
    try:
        for sql in schema.FRESH_SCHEMA:
            db.execute(sql)
    except sqlite3.OperationalError:  # replaying the migrations will say what is wrong, or do without FTS5
        db.execute("ROLLBACK TO fresh")
        db.execute("RELEASE fresh")
        return 0
    now = time.time_ns() // 1000
    db.executemany("INSERT INTO schema_migrations (name, applied_us) VALUES (?, ?)",
                   [(name, now) for name, _ in MIGRATIONS[:count]])
    db.execute(f"PRAGMA user_version = {count}")
    db.execute("RELEASE fresh")
    return count


def _is_ready(db: sqlite3.Connection) -> bool:
    """Already in WAL mode and at this llmtrace's schema: nothing to set up (every open but the first)."""
    version = db.execute("PRAGMA user_version").fetchone()[0]  # read first: it is what finds an existing WAL
    return version == len(MIGRATIONS) and db.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"


@contextlib.contextmanager
def _setup_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on `<store>.lock` while a store is switched to WAL and migrated.

    Two connections switching a new file to WAL at once each hold a read lock and want the write
    lock: SQLite answers one of them "database is locked" at once, without waiting out the busy
    timeout (waiting could deadlock). Taking turns here means one switches and the others find WAL.
    The lock file is never removed: removing it would let two processes lock two different files.
    """
    try:
        import fcntl
    except ImportError:  # no flock (Windows): _use_wal's retries are all there is
        yield
        return
    try:
        fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:  # a folder we may read but not write: the store is opened as it stands
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _waiting_for_setup(path)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _waiting_for_setup(path: Path) -> None:
    """Called when another process holds the setup lock, just before waiting for it (a test's hook)."""


def _use_wal(db: sqlite3.Connection, path: Path, *, create: bool) -> None:
    # The setup lock keeps llmtrace processes from switching at once; a connection that does not take it
    # (an older llmtrace, the sqlite3 shell) can still get an immediate "locked": try again, up to the
    # busy timeout.
    deadline = time.monotonic() + busy_timeout_ms() / 1000
    delay = 0.001
    while True:
        try:
            mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            break
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
    if mode.lower() != "wal" and create:
        raise UserError(f"the trace store at {path} cannot use WAL mode ({mode})", ExitCode.STORE)


def _open_read_only(path: Path) -> sqlite3.Connection:
    """A store we may not write (read-only file, someone else's): read it as it stands."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, isolation_level=None, check_same_thread=False)
        version = db.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as e:
        raise UserError(f"{path} is not a readable llmtrace store ({e})", ExitCode.STORE) from None
    if version != len(MIGRATIONS):
        raise UserError(
            f"the trace store at {path} is read-only and at schema {version}; this llmtrace reads schema {len(MIGRATIONS)}",
            ExitCode.STORE,
        )
    return db


def open_db(path: Path, *, create: bool = True, write: bool = True) -> sqlite3.Connection:
    """Open (and if needed create and migrate) the store. Raises UserError with a one-line reason.

    With write=False, a store that exists but cannot be written is opened read-only instead.
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"the trace store path {path} is a directory", ExitCode.STORE)
    if not write and path.exists() and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
        return _open_read_only(path)
    if create:
        _prepare_file(path)
    elif not path.exists():
        raise UserError(f"no trace store at {path} (run `llmtrace run` first)", ExitCode.STORE)
    try:
        db = _connect(path)
        if not _is_ready(db):  # a new or older store: made or migrated by one process at a time
            with _setup_lock(path):
                _use_wal(db, path, create=create)
                migrate(db)
        db.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.DatabaseError as e:
        msg = str(e)
        if "not a database" in msg or "malformed" in msg or "disk image" in msg:
            raise UserError(f"{path} is not a readable llmtrace store ({msg})", ExitCode.STORE) from None
        if "readonly" in msg or "read-only" in msg or "unable to open" in msg:
            raise UserError(f"the trace store at {path} is not writable ({msg})", ExitCode.STORE) from None
        raise UserError(f"cannot open the trace store at {path}: {msg}", ExitCode.STORE) from None
    return db
