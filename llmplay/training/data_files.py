"""Which files a training job may read, and how it keeps the uploads its jobs use.

Two rules:
- Place (files named through the app: the Train tab, the job queue): only uploads, i.e. Gradio's upload folder
  and ``<data dir>/training/uploads`` (the copies started jobs keep), with symlinks resolved. Saved datasets are
  named, never given as paths. So no form or YAML makes the server read its database, its secrets or
  /etc/passwd. (``llmplay train CONFIG`` on the command line is the operator's and may name any file.)
- Kind (every reader, command line too): a file is read by its declared format, and a database or any other
  binary file is refused, never read as text (a masked-LM preview once showed the database's pages).

Uploads stay on disk only while a job may need them: a preview reads Gradio's upload (swept after a day);
starting a job keeps a content-named copy under ``training/uploads``; ``sweep_unused_uploads`` deletes the
copies that no job on record refers to.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from pathlib import Path

from llmplay.errors import LlmplayError
from llmplay.settings import Settings
from llmplay.tempfiles import upload_dir

log = logging.getLogger(__name__)

DATABASE_SUFFIXES = (".db", ".sqlite", ".sqlite3", ".db-wal", ".db-shm", ".db-journal")
SQLITE_MAGIC = b"SQLite format 3\x00"
BINARY_FORMATS = (".parquet",)  # declared binary formats, read by their own reader (which checks the content)
SNIFF_BYTES = 65536
UNUSED_MIN_AGE_S = 3600  # a copy younger than this may belong to a job being submitted right now


def uploads_dir(settings: Settings) -> Path:
    """Where started jobs keep their uploaded training files."""
    return settings.data_dir / "training" / "uploads"


def allowed_folders(settings: Settings) -> tuple[Path, ...]:
    return upload_dir(), uploads_dir(settings).resolve()


def check_place(settings: Settings, path: str | Path, error: type[LlmplayError] = LlmplayError) -> Path:
    """The resolved path of a training file named through the app; ``error`` unless it is an upload."""
    resolved = Path(path).expanduser().resolve()  # symlinks resolved: a link in uploads/ to the database is not one
    if not any(resolved.is_relative_to(folder) for folder in allowed_folders(settings)):
        raise error(
            f"data.file {Path(path).name!r} is not an upload: the app reads training files only from uploads "
            "(upload the file in the Train tab) and saved datasets (data.source: dataset)."
        )
    return resolved


def check_kind(path: str | Path, error: type[LlmplayError] = LlmplayError) -> None:
    """Refuse a database or a binary file where a text format is declared, by its name and its first bytes."""
    file = Path(path)
    name = file.name
    if file.suffix.lower() in DATABASE_SUFFIXES:
        raise error(f"Training file {name!r} is a database file; training reads tables (CSV, JSONL, ...) or text.")
    try:
        with open(file, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError:
        raise error(f"Training file {name!r} cannot be read.") from None
    if head.startswith(SQLITE_MAGIC):
        raise error(f"Training file {name!r} is an SQLite database, not training data; it is not read.")
    if file.suffix.lower() in BINARY_FORMATS:
        return
    if b"\x00" in head:
        raise error(f"Training file {name!r} is a binary file, not text; training reads tables or UTF-8 text.")


def keep_upload(settings: Settings, path: str | Path) -> Path:
    """A started job's copy of an upload: Gradio's upload is swept after a day, a queued job may wait longer.
    Named by content, so the same file uploaded twice is kept once; a path already kept is returned as is."""
    source = Path(path).resolve()
    folder = uploads_dir(settings)
    if source.is_relative_to(folder.resolve()):
        return source
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    target = folder / f"{digest}-{source.name}"
    if not target.exists():
        folder.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.tmp")
        shutil.copyfile(source, partial)
        partial.replace(target)  # never a half-copied file under the name a job reads
    return target


def used_uploads(settings: Settings) -> set[Path]:
    """The data files of every job on record (queued, running or finished: a failed job may resume)."""
    from llmplay.store import connect

    if not settings.db_path.is_file():
        return set()
    with connect(settings.db_path) as db:
        if "training_jobs" not in db.table_names():
            return set()
        configs = [row["config"] for row in db.query("select config from training_jobs")]
    files = set()
    for config in configs:
        try:
            file = (json.loads(config) if isinstance(config, str) else config or {}).get("data", {}).get("file")
        except (ValueError, AttributeError):
            continue
        if isinstance(file, str) and file:
            files.add(Path(file).resolve())
    return files


def unused_uploads(settings: Settings, min_age_s: float = UNUSED_MIN_AGE_S) -> list[Path]:
    """Kept uploads no job refers to and older than ``min_age_s`` (a younger one may be a job being submitted)."""
    folder = uploads_dir(settings)
    if not folder.is_dir():
        return []
    keep = used_uploads(settings)
    cutoff = time.time() - min_age_s
    unused = []
    for file in sorted(folder.iterdir()):
        try:
            if file.resolve() not in keep and not file.is_dir() and file.lstat().st_mtime < cutoff:
                unused.append(file)
        except OSError:
            continue
    return unused


def sweep_unused_uploads(settings: Settings, min_age_s: float = UNUSED_MIN_AGE_S) -> int:
    """Delete the kept uploads that no job on record refers to; returns how many."""
    removed = 0
    for file in unused_uploads(settings, min_age_s):
        try:
            file.unlink()
            removed += 1
        except OSError as exc:
            log.debug("Could not delete unused upload %s: %s", file, exc)
    return removed
