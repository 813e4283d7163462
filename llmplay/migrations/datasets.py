"""Migrations of the saved datasets' table (llmplay/datasets/)."""

from __future__ import annotations

from sqlite_utils import Database


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
