"""Write transactions: a read-then-write transaction must take the write lock up front (``store.immediate``).

Under WAL, a deferred transaction (sqlite-utils' ``db.atomic()``) that reads and then writes fails at once with
"database is locked" when another connection committed in between: SQLite's busy timeout cannot help, since the
reader's snapshot is stale. An evaluation run lost that way once (its cell insert read the output cache first,
while the page's own requests wrote), so every write transaction in llmplay goes through ``immediate``.
"""

from __future__ import annotations

import re
import sqlite3
import threading

import pytest

from llmplay.store import connect, immediate
from tests.conftest import ROOT


def _table(path):
    with connect(path) as db:
        db["things"].insert({"id": 1, "n": 0}, pk="id")


def _race(path, transaction) -> None:
    """Read inside ``transaction``, let another connection commit a write, then write."""
    read_done, other_done = threading.Event(), threading.Event()

    def other():
        read_done.wait(10)
        with connect(path) as db, immediate(db):  # waits for the first's write lock where it holds one
            db["things"].update(1, {"n": 2})
        other_done.set()

    thread = threading.Thread(target=other)
    thread.start()
    try:
        with connect(path) as db, transaction(db):
            (row,) = db.query("select n from things where id = 1")
            read_done.set()
            other_done.wait(0.5)  # deferred: the other commits now; immediate: it waits for this one
            db["things"].update(1, {"n": row["n"] + 1})
    finally:
        read_done.set()
        thread.join(30)


def test_a_deferred_read_then_write_fails_when_another_connection_commits_between(tmp_path):
    """The failure the rule exists for (sqlite-utils' atomic() begins a deferred transaction)."""
    path = tmp_path / "race.db"
    _table(path)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        _race(path, lambda db: db.atomic())


def test_immediate_makes_the_other_writer_wait_and_both_writes_land(tmp_path):
    path = tmp_path / "race.db"
    _table(path)
    _race(path, immediate)
    with connect(path) as db:
        (row,) = db.query("select n from things where id = 1")
    assert row["n"] == 2, "the other connection's write comes after this one's, not lost and not refused"


def test_no_module_opens_a_deferred_write_transaction():
    """Every write transaction in llmplay takes the lock up front: ``store.immediate``, not ``db.atomic()``."""
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "llmplay").rglob("*.py"))
        if path.name != "store.py"  # immediate() itself nests with atomic() inside an open transaction
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"\.atomic\(\)", line)
    ]
    assert not offenders, f"use llmplay.store.immediate(db) instead of db.atomic(): {offenders}"
