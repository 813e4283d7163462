"""Training jobs and their progress rows in SQLite (tables of migration m006).

Both sides use these: the app (creates jobs, polls progress, asks a job to stop) and the training process
(writes its status and a progress row per logged step). Each call opens a short-lived connection, so the
functions are safe from any thread or process.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llmplay.atomicfile import atomic_write
from llmplay.store import connect

ACTIVE = ("queued", "running")
FINAL = ("done", "failed", "cancelled")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Job:
    id: int
    name: str
    status: str
    config: dict
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    pid: int | None = None
    log_path: str | None = None
    output_dir: str | None = None
    step: int | None = None
    total_steps: int | None = None
    checkpoint: str | None = None
    cancel_requested: int | None = 0
    error: str | None = None
    version_id: int | None = None
    user: str | None = None

    @classmethod
    def from_row(cls, row: dict) -> Job:
        return cls(**{**row, "config": json.loads(row["config"])})


def create_job(db_path: Path, config: dict, user: str | None = None, status: str = "queued") -> Job:
    with connect(db_path) as db:
        table = db["training_jobs"]
        table.insert(
            {"name": config["name"], "status": status, "config": json.dumps(config), "created_at": now(), "user": user}
        )
        return Job.from_row(table.get(table.last_pk))


def get_job(db_path: Path, job_id: int) -> Job:
    with connect(db_path) as db:
        return Job.from_row(db["training_jobs"].get(job_id))


def list_jobs(db_path: Path, limit: int = 50) -> list[Job]:
    with connect(db_path) as db:
        rows = db["training_jobs"].rows_where(order_by="id desc", limit=limit)
        return [Job.from_row(r) for r in rows]


def update_job(db_path: Path, job_id: int, **values: Any) -> None:
    with connect(db_path) as db:
        db["training_jobs"].update(job_id, values)


def add_progress(db_path: Path, job_id: int, step: int, **values: Any) -> None:
    """One logged step or evaluation; also keeps the job row's step/total current for cheap polling."""
    metrics = values.pop("metrics", None)
    row = {"job_id": job_id, "created_at": now(), "step": step, **values}
    if metrics:
        row["metrics"] = json.dumps(metrics)
    with connect(db_path) as db, db.conn:
        db["training_progress"].insert(row)
        job = {"step": step}
        if values.get("total_steps"):
            job["total_steps"] = values["total_steps"]
        db["training_jobs"].update(job_id, job)


def progress(db_path: Path, job_id: int, after_id: int = 0) -> list[dict]:
    """Progress rows of a job in order; ``after_id`` returns only rows newer than one already seen."""
    with connect(db_path) as db:
        rows = list(db["training_progress"].rows_where("job_id = ? and id > ?", [job_id, after_id], order_by="id"))
    for row in rows:
        row["metrics"] = json.loads(row["metrics"]) if row.get("metrics") else {}
    return rows


# ---- the job's live phase -----------------------------------------------------------------------------------
# What the job does right now (loading model, tokenizing, training step k of n, evaluating, saving) and the
# timing the Train tab's countdown needs. A small JSON file in the job's folder, rewritten whole (atomic) by
# the training process at each phase change and step; the app reads it at every poll. Not a table: it changes
# every step and only the latest state matters.
PHASE_FILE = "phase.json"


def write_phase(folder: Path | str | None, **values: Any) -> None:
    """Replace the job's phase record; never raises (a full disk must not end the job)."""
    if not folder:
        return
    with contextlib.suppress(OSError):
        atomic_write(Path(folder) / PHASE_FILE, json.dumps(values, ensure_ascii=False, default=str))


def read_phase(folder: Path | str | None) -> dict:
    """The job's phase record (``{}`` when there is none yet or it cannot be read)."""
    if not folder:
        return {}
    try:
        value = json.loads((Path(folder) / PHASE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
