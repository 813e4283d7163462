"""The registry of trained model versions (table ``model_versions``): what the rest of the app offers by name.

An adapter version is shown as ``"<base> + <name> vN"`` (e.g. ``smollm2-135m-instruct + fpb-lora v2``) and
resolves to its base catalog model plus its adapter folder; a fine-tuned encoder (kind classifier / tagger)
is shown as ``"<name> vN"`` and is a model of its own. Files live under ``<data_dir>/models/versions/``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llmplay.errors import LlmplayError, short_list
from llmplay.store import connect

# encoder: a masked-LM domain-adapted encoder (task mlm), a starting point for later classifier / tagger jobs
KINDS = ("adapter", "classifier", "tagger", "encoder")
_LABEL_RE = re.compile(
    r"^(?:(?P<base>[A-Za-z0-9][A-Za-z0-9._-]*) \+ )?(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*) v(?P<v>\d{1,9})$"
)


@dataclass
class ModelVersion:
    id: int
    name: str
    version: int
    base_model: str
    kind: str
    method: str | None
    task: str | None
    path: str
    config: dict
    data_hash: str | None
    row_ids: list
    metrics: dict
    parent_id: int | None
    files_hash: str | None
    job_id: int | None
    created_at: str
    deleted_at: str | None = None

    @property
    def label(self) -> str:
        """The name pickers show and callers pass back as the model."""
        if self.kind == "adapter":
            return f"{self.base_model} + {self.name} v{self.version}"
        return f"{self.name} v{self.version}"

    @classmethod
    def from_row(cls, row: dict) -> ModelVersion:
        values = dict(row)
        for key, empty in (("config", {}), ("row_ids", []), ("metrics", {})):
            values[key] = json.loads(row[key]) if row.get(key) else empty
        return cls(**values)


def now() -> str:
    """As training's job rows: UTC, whole seconds."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def versions_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "models" / "versions"


def files_hash(folder: Path) -> str:
    """sha256 over every file's relative path and bytes, in a stable order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def register(
    db_path: Path,
    *,
    name: str,
    base_model: str,
    kind: str,
    path: Path,
    method: str | None = None,
    task: str | None = None,
    config: dict | None = None,
    data_hash: str | None = None,
    row_ids: list | None = None,
    metrics: dict | None = None,
    parent_id: int | None = None,
    job_id: int | None = None,
) -> ModelVersion:
    """Add version N+1 of ``name`` for the files in ``path`` (already complete: write them first)."""
    if kind not in KINDS:
        raise LlmplayError(f"Version kind must be one of {', '.join(KINDS)}; got {kind!r}.")
    digest = files_hash(Path(path))
    with connect(db_path) as db:
        with db.conn:  # number and insert in one transaction: two jobs of one name never share a number
            db.execute("BEGIN IMMEDIATE")
            current = db.execute("select max(version) from model_versions where name = ?", [name]).fetchone()[0]
            row = {
                "name": name,
                "version": (current or 0) + 1,
                "base_model": base_model,
                "kind": kind,
                "method": method,
                "task": task,
                "path": str(path),
                "config": json.dumps(config or {}),
                "data_hash": data_hash,
                "row_ids": json.dumps(row_ids or []),
                "metrics": json.dumps(metrics or {}),
                "parent_id": parent_id,
                "files_hash": digest,
                "job_id": job_id,
                "created_at": now(),
            }
            table = db["model_versions"]
            table.insert(row)
            pk = table.last_pk
        return ModelVersion.from_row(table.get(pk))


def list_versions(db_path: Path, include_deleted: bool = False) -> list[ModelVersion]:
    if not Path(db_path).exists():
        return []
    with connect(db_path) as db:
        where = None if include_deleted else "deleted_at is null"
        return [ModelVersion.from_row(r) for r in db["model_versions"].rows_where(where, order_by="name, version")]


def get_version(db_path: Path, version_id: int) -> ModelVersion:
    with connect(db_path) as db:
        return ModelVersion.from_row(db["model_versions"].get(version_id))


def find(db_path: Path, label: str) -> ModelVersion | None:
    """The live version a picker label (``"base + name vN"`` or ``"name vN"``) names, or None."""
    match = _LABEL_RE.match(label or "")
    if not match or not Path(db_path).exists():
        return None
    with connect(db_path) as db:
        rows = list(
            db["model_versions"].rows_where(
                "name = ? and version = ? and deleted_at is null", [match["name"], int(match["v"])]
            )
        )
    if not rows:
        return None
    version = ModelVersion.from_row(rows[0])
    return version if version.label == label else None


class ParentVersionError(LlmplayError):
    """A job's parent_version names no live version, or one trained on another base model."""


def parent_version(db_path: Path, label: str, base_model: str, kinds: tuple[str, ...] | None = None) -> ModelVersion:
    """The version a job continues (``parent_version``): it exists and was trained on ``base_model``. ``kinds``:
    the version kinds the job can continue, named when the label is unknown."""
    parent = find(db_path, label)
    if parent is None:
        known = [v.label for v in list_versions(db_path) if kinds is None or v.kind in kinds]
        raise ParentVersionError(
            f"No trained version {label!r} (deleted, or a typo): pick one from the versions list "
            f"({short_list(known) or 'none yet'}), or leave parent_version empty to start from the base model."
        )
    if parent.base_model != base_model:
        raise ParentVersionError(
            f"Version {parent.label!r} was trained on {parent.base_model!r}, not on {base_model!r}; a trained version "
            f"only fits the model it was trained on. Set base_model to {parent.base_model!r} or pick another "
            "parent version."
        )
    return parent


def mark_deleted(db_path: Path, version_id: int, **extra: Any) -> None:
    with connect(db_path) as db:
        db["model_versions"].update(version_id, {"deleted_at": now(), **extra})
