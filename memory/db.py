"""Opening the experience log: WAL, busy timeout, foreign keys, and migrations on every open.

Every SQLite failure that a user can cause (a corrupt file, a database another process holds
locked past the timeout, a folder we may not write) becomes one ``StoreError`` line.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from agent.errors import StoreError


def now() -> str:
    """UTC timestamps as ISO 8601 text: sortable as strings, readable in `sqlite3`."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def connect(path: Path, timeout_s: float = 10.0) -> sqlite3.Connection:
    """A connection in autocommit mode; writes go through ``transaction``."""
    if path.is_file() and path.stat().st_size == 0 and not path.with_name(path.name + "-wal").exists():
        # SQLite would quietly start a fresh, empty log here: everything taught would seem gone.
        raise StoreError(f"{path} is empty (0 bytes): a truncated database, not a new one; restore it from "
                         "a backup, or move it away to start afresh")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=timeout_s, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
        conn.execute("PRAGMA journal_mode = WAL")  # readers never block the one writer
        conn.execute("PRAGMA synchronous = NORMAL")  # safe with WAL: a crash loses no committed turn
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.Error as exc:
        raise store_error(exc, path) from exc
    except OSError as exc:
        raise StoreError(f"cannot open {path}: {exc.strerror or exc}") from exc
    return conn


def store_error(exc: sqlite3.Error, path: Path | str) -> StoreError:
    """Say in one line what went wrong with the database and what the user can do."""
    text = str(exc)
    if "locked" in text or "busy" in text:
        return StoreError(f"{path} is locked by another process; try again, or raise db_timeout_s")
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return StoreError(f"{path} is corrupt or not a reverie database ({text}); move it away to start afresh")
    if "readonly" in text or "unable to open" in text:
        return StoreError(f"cannot write {path}: {text}")
    return StoreError(f"database error in {path}: {text}")


@contextmanager
def immediate(conn: sqlite3.Connection, path: Path | str) -> Iterator[sqlite3.Connection]:
    """One write transaction, taken up front (BEGIN IMMEDIATE) so it never deadlocks midway."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        raise store_error(exc, path) from exc
    try:
        yield conn
    except sqlite3.Error as exc:
        conn.execute("ROLLBACK")
        raise store_error(exc, path) from exc
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    try:
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        conn.execute("ROLLBACK")
        raise store_error(exc, path) from exc
