"""Tables and checks the dataset tests share: a small table in every format, and what a save left behind."""

from __future__ import annotations

import json
import os
import sqlite3

import pandas as pd

from llmplay.datasets.store import datasets_dir
from llmplay.settings import Settings

ROWS = [
    {"text": "Café opens, €5 coffee", "label": "positive"},
    {"text": "Profit fell", "label": ""},
    {"text": "Flat quarter", "label": "neutral"},
]


def write_file(tmp_path, name: str, content: bytes | str) -> os.PathLike:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def stored(settings: Settings) -> tuple[list[str], list[dict]]:
    """What is on disk and in the database: both must be unchanged by a failed upload."""
    folder = datasets_dir(settings)
    files = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    if not settings.db_path.exists():
        return files, []
    con = sqlite3.connect(settings.db_path)
    try:
        has_table = con.execute("SELECT 1 FROM sqlite_master WHERE name='datasets'").fetchone()
        rows = con.execute("SELECT name, file FROM datasets").fetchall() if has_table else []
    finally:
        con.close()
    return files, rows


def as_file(fmt: str, tmp_path) -> os.PathLike:
    df = pd.DataFrame(ROWS)
    path = tmp_path / f"data.{fmt}"
    if fmt == "csv":
        df.to_csv(path, index=False)
    elif fmt == "tsv":
        df.to_csv(path, index=False, sep="\t")
    elif fmt == "json":
        path.write_text(json.dumps(ROWS, ensure_ascii=False), encoding="utf-8")
    elif fmt == "jsonl":
        path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in ROWS) + "\n", encoding="utf-8")
    elif fmt == "parquet":
        df.to_parquet(path, index=False)
    return path
