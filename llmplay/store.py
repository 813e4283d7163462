"""llmplay's SQLite database (``Settings.db_path``): opening it, applying the migrations, write transactions.

The tables are defined in ``llmplay.migrations`` (one module per owning package, in one fixed order; sqlite-utils'
``Migrations``: each runs once, in a transaction, recorded in ``_sqlite_migrations``).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlite_utils import Database

from llmplay.migrations import MIGRATIONS


def now() -> str:
    """A row's timestamp (``*_at`` columns of feedback, users and the audit log): UTC, to the millisecond."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def open_db(path: Path | str) -> Database:
    """Open (creating if needed) the database at ``path`` and apply pending migrations."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A busy timeout instead of failing at once when another process (CLI vs app) holds the write lock.
    db = Database(sqlite3.connect(str(path), timeout=30))
    # WAL: readers never block the writer nor each other; NORMAL is crash-safe (kill -9) under WAL.
    if db.journal_mode != "wal":
        db.enable_wal()
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    _apply_migrations(db)
    return db


def _apply_migrations(db: Database, patience_s: float = 30.0) -> None:
    """Apply pending migrations, retrying while another process applies them: two processes opening a new
    database at once (the app and a training job) read the migration state, then one's write fails at once
    with "database is locked" (a deferred read cannot wait for the write lock). A retry finds them applied."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            MIGRATIONS.apply(db)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            if db.conn.in_transaction:
                db.conn.rollback()
            time.sleep(0.1)


@contextmanager
def immediate(db: Database) -> Iterator[Database]:
    """A write transaction that takes the write lock up front (``BEGIN IMMEDIATE``), so the busy timeout
    applies: a deferred transaction that reads and then writes fails at once with "database is locked" when
    another writer got in between. sqlite-utils calls inside nest as savepoints. Inside one already: nests."""
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    # Writers of this process queue on a lock first: SQLite's busy handler retries with sleeps of up to 100 ms,
    # which made the slowest of 20 concurrent labelers' submits wait ~0.5 s (bench/load.py); other processes
    # still wait in the busy handler. Reentrant, so a second connection in the same thread behaves as before.
    with _writer_lock(db):
        db.conn.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.rollback()
            raise
        else:
            try:
                db.conn.execute("COMMIT")
            except BaseException:
                db.rollback()
                raise


_WRITER_LOCKS: dict[str, threading.RLock] = {}
_WRITER_GUARD = threading.Lock()


def _writer_lock(db: Database) -> threading.RLock:
    path = db.execute("pragma database_list").fetchone()[2] or ":memory:"
    with _WRITER_GUARD:
        return _WRITER_LOCKS.setdefault(path, threading.RLock())


@contextmanager
def connect(path: Path | str) -> Iterator[Database]:
    """A short-lived connection: UI handlers run on many threads, and sqlite3 connections belong to one."""
    db = open_db(path)
    try:
        yield db
    finally:
        db.close()
