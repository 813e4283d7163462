"""Saved datasets: named tables on disk and in SQLite, which evaluation, training and the loop read by name.

A saved dataset is a normalised JSONL file ``<data_dir>/datasets/<name>-<hash8>.jsonl`` plus a row in the
``datasets`` table. The file is written first (temp file + rename), then the row is inserted; if the insert
fails the file is removed. A process killed in between leaves only an unreferenced file, which
``remove_orphans`` (run on every save) deletes once it is old enough not to be another save in progress.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from llmplay.atomicfile import atomic_write
from llmplay.datasets.errors import DatasetError
from llmplay.datasets.files import cell_text, check_columns
from llmplay.datasets.mapping import ColumnMapping, validate_mapping
from llmplay.settings import Settings
from llmplay.store import connect, immediate

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
ORPHAN_MIN_AGE_S = 3600  # younger unreferenced files may belong to a save still in progress


@dataclass(frozen=True)
class DatasetInfo:
    id: int
    name: str
    content_hash: str
    rows: int
    columns: list[str]
    mapping: ColumnMapping
    source: str
    path: Path
    created_at: str


@dataclass(frozen=True)
class Dataset:
    info: DatasetInfo
    df: pd.DataFrame

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def mapping(self) -> ColumnMapping:
        return self.info.mapping


@dataclass(frozen=True)
class SaveResult:
    info: DatasetInfo
    created: bool  # False when the same name already held the same content


def datasets_dir(settings: Settings) -> Path:
    return settings.data_dir / "datasets"


def normalise(df: pd.DataFrame) -> str:
    """The canonical JSONL text of a table: its hash is the dataset's identity."""
    columns = list(df.columns)
    lines = [
        json.dumps(dict(zip(columns, row)), ensure_ascii=False, separators=(",", ":"))
        for row in df.itertuples(index=False, name=None)
    ]
    return "\n".join(lines) + "\n"


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def save_dataset(
    settings: Settings, name: str, df: pd.DataFrame, mapping: ColumnMapping | None = None, source: str = ""
) -> SaveResult:
    """Store ``df`` as dataset ``name``. Same name and content again: the existing one (mapping updated)."""
    if not NAME_RE.match(name or ""):
        raise DatasetError(f"{name!r} is not a dataset name (letters, digits, '-' and '_', up to 64 characters).")
    mapping = mapping or ColumnMapping()
    columns = [str(c) for c in df.columns]
    check_columns(columns, name)
    if df.empty:
        raise DatasetError(f"Dataset {name!r} has no rows.")
    validate_mapping(mapping, columns)
    text = normalise(df.astype(object).map(cell_text))
    digest = content_hash(text)
    folder = datasets_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    remove_orphans(settings)
    with connect(settings.db_path) as db:
        existing = _row(db, name)
        if existing is not None:
            if existing["content_hash"] != digest:
                raise DatasetError(f"A dataset named {name!r} already exists with other content; pick another name.")
            with immediate(db):
                db["datasets"].update(existing["id"], {"mapping": mapping.to_json()})
            return SaveResult(_info(_row(db, name), folder), created=False)
        path = folder / f"{name}-{digest[:8]}.jsonl"
        atomic_write(path, text)
        try:
            with immediate(db):
                _insert(db, name, digest, len(df), columns, mapping, source, path.name)
        except BaseException:
            path.unlink(missing_ok=True)  # no row refers to it: same name + same hash returned above
            raise
        return SaveResult(_info(_row(db, name), folder), created=True)


def _insert(db, name, digest, rows, columns, mapping, source, file_name) -> None:
    record = {
        "name": name,
        "content_hash": digest,
        "rows": rows,
        "columns": json.dumps(columns, ensure_ascii=False),
        "mapping": mapping.to_json(),
        "source": source,
        "file": file_name,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    db["datasets"].insert(record)


def list_datasets(settings: Settings) -> list[DatasetInfo]:
    with connect(settings.db_path) as db:
        rows = list(db["datasets"].rows_where(order_by="name"))
    return [_info(r, datasets_dir(settings)) for r in rows]


def dataset_info(settings: Settings, name: str) -> DatasetInfo:
    with connect(settings.db_path) as db:
        row = _row(db, name)
        if row is None:
            known = ", ".join(r["name"] for r in db["datasets"].rows_where(order_by="name")) or "none yet"
            raise DatasetError(f"No dataset named {name!r} (saved datasets: {known}).")
    return _info(row, datasets_dir(settings))


def load_dataset(settings: Settings, name: str) -> Dataset:
    """The saved table and its mapping; refuses a file that is missing or no longer matches its hash."""
    info = dataset_info(settings, name)
    try:
        text = info.path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(f"The file of dataset {name!r} ({info.path}) is missing; delete and re-upload it.") from None
    if content_hash(text) != info.content_hash:
        raise DatasetError(f"The file of dataset {name!r} ({info.path}) was changed outside llmplay.")
    rows = [json.loads(line) for line in text.splitlines() if line]
    df = pd.DataFrame([[r.get(c, "") for c in info.columns] for r in rows], columns=info.columns, dtype=object)
    return Dataset(info=info, df=df)


def delete_dataset(settings: Settings, name: str) -> None:
    info = dataset_info(settings, name)
    with connect(settings.db_path) as db, immediate(db):
        db["datasets"].delete(info.id)
    # After the commit: a crash here leaves an orphan file, which remove_orphans deletes later.
    info.path.unlink(missing_ok=True)


def remove_orphans(settings: Settings, min_age_s: float = ORPHAN_MIN_AGE_S) -> list[Path]:
    """Delete dataset files (and temp files) no row refers to, left by a crash between write and insert."""
    folder = datasets_dir(settings)
    if not folder.is_dir():
        return []
    with connect(settings.db_path) as db:
        referenced = {r["file"] for r in db["datasets"].rows_where(select="file")}
    now, removed = time.time(), []
    for path in folder.iterdir():
        if path.is_file() and path.name not in referenced and now - path.stat().st_mtime >= min_age_s:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _row(db, name: str) -> dict | None:
    return next(db["datasets"].rows_where("name = ?", [name]), None)


def _info(row: dict, folder: Path) -> DatasetInfo:
    return DatasetInfo(
        id=row["id"],
        name=row["name"],
        content_hash=row["content_hash"],
        rows=row["rows"],
        columns=json.loads(row["columns"]),
        mapping=ColumnMapping.from_json(row["mapping"]),
        source=row["source"] or "",
        path=folder / row["file"],
        created_at=row["created_at"],
    )
