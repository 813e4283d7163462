"""What a backup copies from a data dir besides the database (llmplay/backup.py), and how: every file is copied
and hashed in one pass, so the manifest's sha256 is that of the bytes in the backup."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from llmplay.settings import Settings
from llmplay.training.data_files import unused_uploads

DB_FILE = "llmplay.db"
MANIFEST = "manifest.json"
PREFIX = "llmplay-"  # a backup is a folder PREFIX<UTC time> holding MANIFEST
PARTIAL = ".partial"
RESTORE_STAGE = ".restore-"
CHUNK = 1 << 20
# Top-level folders of the data dir that a backup leaves out, and why (also written into the manifest).
SKIPPED = {
    "tmp": "temporary uploads and export downloads (swept after a day)",
    "cache": "converted-model cache: re-created from the model's weights on first load",
    "exports": "evaluation result exports: re-created from the database (`llmplay eval`)",
    "models/merged": "merged exports of trained versions: re-created from the version (Train tab, Merge)",
}
# The live database and its sidecars: the online backup copies the database itself, consistently.
DB_SIDECARS = tuple(DB_FILE + s for s in ("", "-wal", "-shm", "-journal"))
# A backup written into the data dir (any destination, not only this backup's) would otherwise be copied into
# every later backup, each one holding all the earlier ones.
BACKUP_REASON = "an llmplay backup: backups are never copied into backups"


def is_backup_folder(path: Path) -> bool:
    """A whole backup (PREFIX... with a manifest) or one being written (.PREFIX....partial)."""
    name = path.name
    if name.startswith("." + PREFIX) and name.endswith(PARTIAL):
        return True
    return name.startswith(PREFIX) and (path / MANIFEST).is_file()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def copy_hashed(src: Path, dst: Path) -> tuple[int, str]:
    """Copy ``src`` to ``dst`` (flushed to disk) and return (size, sha256) of the bytes written: a file that
    grows meanwhile (a job's log) is recorded as copied."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        while block := fin.read(CHUNK):
            digest.update(block)
            fout.write(block)
            size += len(block)
        fout.flush()
        os.fsync(fout.fileno())
    shutil.copystat(src, dst)
    return size, digest.hexdigest()


def inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def skip_rules(settings: Settings, dest: Path | None) -> dict[Path, str]:
    """Absolute folders to leave out -> reason."""
    root = settings.data_dir.resolve()
    rules = {root / rel: reason for rel, reason in SKIPPED.items()}
    if inside(settings.cache_dir, root):
        rules[settings.cache_dir.resolve()] = SKIPPED["cache"]
    if dest is not None and inside(dest, root):
        rules[dest.resolve()] = "the backup destination itself"
    return rules


def data_files(settings: Settings, dest: Path | None) -> tuple[list[Path], list[dict]]:
    """The data dir's files to back up (relative paths) and what was left out (path, reason)."""
    root = settings.data_dir.resolve()
    rules = skip_rules(settings, dest)
    # Training uploads no job refers to: temporary like tmp/, swept by the job runner.
    unused = {p.resolve() for p in unused_uploads(settings)}
    files: list[Path] = []
    skipped: dict[str, str] = {}
    for folder, dirs, names in os.walk(root):
        base = Path(folder)
        for name in sorted(dirs):
            sub = base / name
            rel = sub.relative_to(root).as_posix()
            if sub in rules:
                skipped[rel + "/"] = rules[sub]
            elif base == root and name.startswith(RESTORE_STAGE):
                skipped[rel + "/"] = "a restore's staging folder (a restore cut short)"
            elif is_backup_folder(sub) and not sub.is_symlink():
                skipped[rel + "/"] = BACKUP_REASON
            elif name.endswith(PARTIAL):
                skipped[rel + "/"] = "a half-written folder (a training job's output before its final rename)"
            elif sub.is_symlink():
                skipped[rel + "/"] = "a symbolic link: its target is not part of the data dir"
        dirs[:] = sorted(d for d in dirs if (base / d).relative_to(root).as_posix() + "/" not in skipped)
        for name in sorted(names):
            path = base / name
            rel = path.relative_to(root)
            if base == root and name in DB_SIDECARS:
                continue  # the online backup takes the database
            if name.startswith(".") and name.endswith(".tmp"):
                skipped[rel.as_posix()] = "a temporary file of an atomic write in progress"
            elif path.is_symlink():
                skipped[rel.as_posix()] = "a symbolic link: its target is not part of the data dir"
            elif path in unused:
                skipped[rel.as_posix()] = "a training upload no job uses (swept)"
            else:
                files.append(rel)
    return files, [{"path": p, "reason": r} for p, r in sorted(skipped.items())]
