"""The SQLite trace store: schema and migrations, the span writer, and the read queries."""

from __future__ import annotations

import os
from pathlib import Path

from llmtrace.store.db import open_db


def open_store(path: Path | None = None, *, create: bool = True, write: bool = True):
    """The one way to get a connection: resolves the path and applies pending migrations.

    Read commands pass write=False: a store they cannot write is then opened read-only.
    """
    if path is None:
        from llmtrace.home import store_path

        path = store_path()
    db = open_db(path, create=create, write=write)
    if not os.access(path, os.W_OK):
        return db  # opened read-only: nothing to recover into
    from llmtrace.store.spool import recover, spool_dir

    try:
        recover(db, spool_dir(Path(path).parent))
    except Exception:  # recovery is best effort; a later command tries again
        pass
    return db
