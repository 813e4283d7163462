"""llmplay's SQLite database (``Settings.db_path``): opening it and its migrations.

Every feature that keeps data adds its tables here as a new migration at the end of the list
(sqlite-utils' ``Migrations``: each runs once, in a transaction, recorded in ``_sqlite_migrations``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

MIGRATIONS = Migrations("llmplay")


@MIGRATIONS()
def m001_template_versions(db: Database) -> None:
    db["template_versions"].create(
        {
            "id": int,
            "template": str,  # template name (= file name in prompts/ without .yaml)
            "number": int,  # 1, 2, ... per template
            "content": str,  # the whole YAML file
            "content_hash": str,  # sha256 of content
            "created_at": str,  # ISO 8601, UTC
            "author": str,
            "message": str,
        },
        pk="id",
        not_null={"template", "number", "content", "content_hash", "created_at"},
    )
    db["template_versions"].create_index(["template", "number"], unique=True)


@MIGRATIONS()
def m002_datasets(db: Database) -> None:
    db["datasets"].create(
        {
            "id": int,
            "name": str,  # unique, chosen by the user; also part of the file name
            "content_hash": str,  # sha256 of the normalised JSONL file
            "rows": int,
            "columns": str,  # JSON list, in file order
            "mapping": str,  # JSON: {"variables": {template variable: column}, "reference": column or null}
            "source": str,  # the uploaded file's name (or "builtin:<name>")
            "file": str,  # file name under <data_dir>/datasets/
            "created_at": str,  # ISO 8601, UTC
        },
        pk="id",
        not_null={"name", "content_hash", "rows", "columns", "mapping", "file", "created_at"},
    )
    db["datasets"].create_index(["name"], unique=True)


def open_db(path: Path | str) -> Database:
    """Open (creating if needed) the database at ``path`` and apply pending migrations."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A busy timeout instead of failing at once when another process (CLI vs app) holds the write lock.
    db = Database(sqlite3.connect(str(path), timeout=30))
    MIGRATIONS.apply(db)
    return db


@contextmanager
def connect(path: Path | str) -> Iterator[Database]:
    """A short-lived connection: UI handlers run on many threads, and sqlite3 connections belong to one."""
    db = open_db(path)
    try:
        yield db
    finally:
        db.close()
