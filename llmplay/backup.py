"""Backups of a data dir and restores from them: ``llmplay backup DEST`` / ``llmplay restore SRC``, and the
Hugging Face Spaces schedule (a restore at start-up when the local database is missing, then a backup every
interval into a mounted bucket folder).

A backup is a folder ``DEST/llmplay-<UTC time>/`` holding ``llmplay.db`` (SQLite's online backup API: one
consistent snapshot while the app keeps writing), ``files/`` (the data dir's files, minus what is re-created
or temporary: ``backup_files.SKIPPED``) and ``manifest.json`` (every file's size and sha256, the database's
integrity_check and row counts per table, the llmplay version). It is written as ``DEST/.llmplay-<time>.partial``
and renamed when complete: a folder without the ``.partial`` suffix and with a manifest is a whole backup.

A restore verifies everything first (sizes, sha256s, integrity_check), writes into a staging folder, and renames
it into place; it never writes over a data dir that has a database. The schedule (a restore at start-up, a
backup every interval and one at shutdown) is ``backup_schedule.py``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from llmplay import __version__, jsonsafe
from llmplay.backup_files import (
    DB_FILE,
    DB_SIDECARS,
    MANIFEST,
    PARTIAL,
    PREFIX,
    RESTORE_STAGE,
    copy_hashed,
    data_files,
    inside,
    sha256_file,
)
from llmplay.errors import LlmplayError
from llmplay.settings import Settings

log = logging.getLogger(__name__)

FILES = "files"
FORMAT = 1
# Rollback-journal databases only: each backup step holds a shared lock that blocks writers, so step in chunks
# and sleep between them. Under WAL (what open_db sets) a reader never blocks a writer, and a paged backup
# would restart whenever another connection commits between two steps: there it copies in one step.
STEP_PAGES = 256
STEP_SLEEP_S = 0.01
STALE_PARTIAL_S = 6 * 3600


class BackupError(LlmplayError):
    """A backup or restore that cannot be done as asked (no database, a data dir in the way)."""


class BackupCorruptError(BackupError):
    """A backup whose files do not match its manifest, or whose database fails integrity_check."""


@dataclass(frozen=True)
class Backup:
    path: Path
    manifest: dict

    @property
    def created_at(self) -> str:
        return self.manifest.get("created_at", "")


def _now() -> datetime:
    return datetime.now(UTC)


def _copy_database(src: Path, dst: Path) -> None:
    """SQLite's online backup of ``src`` into ``dst``: a consistent snapshot, whatever other connections write.
    The live database is only read: its journal mode stays as it is; the copy is a plain single file."""
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(dst)
    try:
        wal = source.execute("pragma journal_mode").fetchone()[0] == "wal"
        if wal:
            source.backup(target)
        else:
            # Sleep between steps (the progress callback runs after each one) so writers get the lock.
            source.backup(target, pages=STEP_PAGES, progress=lambda *_: time.sleep(STEP_SLEEP_S))
        target.execute("pragma journal_mode=delete")
        target.commit()
    finally:
        target.close()
        source.close()


def _describe_db(path: Path) -> dict:
    """integrity_check and row counts of a database file, read without writing next to it (immutable: a backup
    may sit on a bucket mount with no locking)."""
    con = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        check = [row[0] for row in con.execute("pragma integrity_check")]
        names = [r[0] for r in con.execute("select name from sqlite_master where type = 'table' order by name")]
        tables = {name: con.execute(f'select count(*) from "{name}"').fetchone()[0] for name in names}
    except sqlite3.DatabaseError as exc:
        return {"integrity_check": f"unreadable: {exc}", "tables": {}}
    finally:
        con.close()
    return {"integrity_check": "ok" if check == ["ok"] else "; ".join(check[:5]), "tables": tables}


def _unique_name(dest: Path, when: datetime) -> str:
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    name, n = f"{PREFIX}{stamp}", 1
    while (dest / name).exists() or (dest / f".{name}{PARTIAL}").exists():
        name, n = f"{PREFIX}{stamp}-{n}", n + 1
    return name


_BACKUP_LOCK = threading.Lock()  # the scheduler and a final backup at shutdown never run at once


def backup(settings: Settings, dest: Path | str, *, keep: int | None = None) -> Backup:
    """Back up ``settings``' data dir into a new folder under ``dest`` (created); with ``keep``, delete all but
    the ``keep`` newest complete backups there afterwards. Returns the new backup."""
    if not str(dest).strip():  # Path("") is the current folder
        raise BackupError("The backup destination is empty; give a folder (. for the current one).")
    dest = Path(dest)
    if keep is not None and keep < 1:
        raise BackupError(f"--keep must be at least 1 (the backup just made); got {keep}.")
    if not settings.db_path.is_file():
        raise BackupError(f"No database at {settings.db_path}: nothing to back up (is --data-dir right?).")
    if dest.exists() and not dest.is_dir():
        raise BackupError(f"{dest} is a file; the backup destination must be a folder.")
    if inside(settings.data_dir, dest) and dest.resolve() != settings.data_dir.resolve():
        raise BackupError(f"{dest} contains the data dir {settings.data_dir}; pick a folder outside it.")
    if dest.resolve() == settings.data_dir.resolve():
        raise BackupError("The backup destination cannot be the data dir itself; pick another folder.")
    with _BACKUP_LOCK:
        when = _now()
        try:
            dest.mkdir(parents=True, exist_ok=True)
            name = _unique_name(dest, when)
            partial = dest / f".{name}{PARTIAL}"
            partial.mkdir()
        except OSError as exc:  # read-only, not a real folder (/proc/self), no permission
            raise BackupError(f"Cannot write a backup into {dest}: {exc.strerror or exc}.") from None
        try:
            manifest = _write_backup(settings, dest, partial, when)
            _publish(partial, dest / name)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            if (dest / name).is_dir() and not (dest / name / MANIFEST).exists():  # a copy cut short (_publish)
                shutil.rmtree(dest / name, ignore_errors=True)
            raise
    made = Backup(dest / name, manifest)
    if keep is not None:
        prune(dest, keep)
    return made


def _publish(partial: Path, final: Path) -> None:
    """Give a finished backup its name. Some bucket mounts cannot rename a folder: there, copy it with the
    manifest last (a folder with a manifest is a whole backup), then delete the partial one."""
    try:
        os.replace(partial, final)
    except OSError as exc:
        log.info("Could not rename %s (%s); copying it instead", partial, exc)
        shutil.copytree(partial, final, ignore=lambda folder, names: [MANIFEST] if Path(folder) == partial else [])
        shutil.copy2(partial / MANIFEST, final / MANIFEST)
        shutil.rmtree(partial, ignore_errors=True)


def _write_backup(settings: Settings, dest: Path, partial: Path, when: datetime) -> dict:
    started = time.perf_counter()
    # The database first, then the files: what a row names (a dataset file, a version's folder) is written
    # before its row, so every file the snapshot refers to is there when the files are copied (unless deleted).
    _copy_database(settings.db_path, partial / DB_FILE)
    db_info = _describe_db(partial / DB_FILE)
    if db_info["integrity_check"] != "ok":
        raise BackupCorruptError(f"The database copy failed integrity_check: {db_info['integrity_check']}")
    files, skipped = data_files(settings, dest)
    entries, vanished = [], []
    root = settings.data_dir.resolve()
    for rel in files:
        try:
            size, sha = copy_hashed(root / rel, partial / FILES / rel)
        except FileNotFoundError:  # deleted by the app between the listing and the copy
            vanished.append(rel.as_posix())
            continue
        entries.append({"path": rel.as_posix(), "size": size, "sha256": sha})
    manifest = {
        "format": FORMAT,
        "llmplay_version": __version__,
        "created_at": when.isoformat(timespec="microseconds"),
        "data_dir": str(root),
        "database": {
            "file": DB_FILE,
            "size": (partial / DB_FILE).stat().st_size,
            "sha256": sha256_file(partial / DB_FILE),
            "method": "sqlite3 online backup API",
            **db_info,
        },
        "files": entries,
        "skipped": skipped,
        "vanished": vanished,
        "total_bytes": sum(e["size"] for e in entries) + (partial / DB_FILE).stat().st_size,
        "elapsed_s": round(time.perf_counter() - started, 3),
    }
    text = json.dumps(manifest, indent=1, ensure_ascii=False)
    with open(partial / MANIFEST, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    return manifest


def _load_manifest(folder: Path) -> tuple[dict | None, str]:
    """(the manifest, "") or (None, what is wrong with it)."""
    try:
        manifest = jsonsafe.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # unreadable, not UTF-8, not JSON, nested too deep
        return None, f"it cannot be read ({exc})"
    problem = manifest_problem(manifest)
    return (None, problem) if problem else (manifest, "")


def _read_manifest(folder: Path) -> dict | None:
    return _load_manifest(folder)[0]


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _sha256(value) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def manifest_problem(manifest) -> str | None:
    """What makes ``manifest`` unusable for a restore (a wrong type, a path that must not be written), or None.

    Checked once, before anything reads it: every later step (listing, verifying, copying, the CLI's report)
    relies on these types. Files may not name the database or its sidecars: a ``-wal`` or ``-journal`` file next
    to the restored database would be replayed into it by SQLite, past the copy's verified integrity."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return f"it is not an llmplay backup manifest of format {FORMAT}"
    for key in ("created_at", "llmplay_version"):
        if not isinstance(manifest.get(key), str):
            return f"{key} must be text"
    db = manifest.get("database")
    if not isinstance(db, dict):
        return "database must be an object"
    if not _whole(db.get("size")) or not _sha256(db.get("sha256")):
        return "database needs a size (bytes) and a sha256"
    tables = db.get("tables")
    if not isinstance(tables, dict) or not all(isinstance(k, str) and _whole(v) for k, v in tables.items()):
        return "database.tables must map table names to row counts"
    files = manifest.get("files")
    if not isinstance(files, list):
        return "files must be a list"
    for n, entry in enumerate(files):
        if not isinstance(entry, dict):
            return f"files[{n}] must be an object"
        path = entry.get("path")
        if not isinstance(path, str) or not path.strip() or "\x00" in path:
            return f"files[{n}].path must be a relative path"
        rel = PurePosixPath(path)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            return f"the manifest names a path outside the data dir: {path!r}"
        if len(rel.parts) == 1 and rel.name.lower() in DB_SIDECARS:
            return (
                f"files[{n}] is {path!r}, the database's own file: the database is restored from its verified copy only"
            )
        if not _whole(entry.get("size")) or not _sha256(entry.get("sha256")):
            return f"files[{n}] ({path!r}) needs a size (bytes) and a sha256"
    return None


def list_backups(folder: Path | str) -> list[Backup]:
    """The complete backups directly under ``folder``, oldest first (by their manifest's created_at)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for sub in folder.iterdir():
        if sub.is_dir() and sub.name.startswith(PREFIX) and (manifest := _read_manifest(sub)) is not None:
            found.append(Backup(sub, manifest))
    return sorted(found, key=lambda b: (b.created_at, b.path.name))


def prune(folder: Path | str, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest complete backups in ``folder``, and half-written ones older than
    ``STALE_PARTIAL_S`` (a backup killed midway); returns what was deleted."""
    folder = Path(folder)
    removed = [b.path for b in list_backups(folder)[:-keep]]
    cutoff = time.time() - STALE_PARTIAL_S
    for sub in folder.iterdir():
        if sub.name.startswith("." + PREFIX) and sub.name.endswith(PARTIAL) and sub.stat().st_mtime < cutoff:
            removed.append(sub)
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


def find_backup(src: Path | str) -> Backup:
    """``src`` itself when it is a backup folder, else the newest complete backup directly under it."""
    src = Path(src)
    if not src.is_dir():
        raise BackupError(f"{src} is not a folder: give a backup folder or the folder holding backups.")
    if (src / MANIFEST).is_file():
        manifest, problem = _load_manifest(src)
        if manifest is None:
            raise BackupCorruptError(f"{src / MANIFEST} is not a usable backup manifest: {problem}. Nothing restored.")
        return Backup(src, manifest)
    try:
        backups = list_backups(src)
    except OSError as exc:
        raise BackupError(f"Cannot read the backups in {src}: {exc.strerror or exc}.") from None
    if not backups:
        raise BackupError(f"No complete backup in {src} (a backup folder holds {MANIFEST}).")
    return backups[-1]


def verify(found: Backup) -> None:
    """Check every file of a backup against its manifest and the database's integrity; raise
    BackupCorruptError naming what is wrong."""
    problem = manifest_problem(found.manifest)  # types, and no path outside the data dir or onto the database
    if problem:
        raise BackupCorruptError(f"Backup {found.path}: {problem}. Nothing restored.")
    db = found.manifest["database"]
    expected = [(found.path / DB_FILE, db["size"], db["sha256"])]
    for entry in found.manifest["files"]:
        expected.append((found.path / FILES / entry["path"], entry["size"], entry["sha256"]))
    problems = []
    for path, size, sha in expected:
        rel = path.relative_to(found.path).as_posix()
        if not path.is_file():
            problems.append(f"{rel} is missing")
        elif path.stat().st_size != size:
            problems.append(f"{rel} has {path.stat().st_size} bytes, the manifest says {size}")
        elif sha256_file(path) != sha:
            problems.append(f"{rel} does not match its sha256 in the manifest")
    if problems:
        more = f" and {len(problems) - 5} more" if len(problems) > 5 else ""
        raise BackupCorruptError(f"Backup {found.path} is damaged: {'; '.join(problems[:5])}{more}. Nothing restored.")
    check = _describe_db(found.path / DB_FILE)["integrity_check"]
    if check != "ok":
        raise BackupCorruptError(
            f"Backup {found.path}: the database fails integrity_check ({check}). Nothing restored."
        )


def has_database(data_dir: Path) -> bool:
    return any((data_dir / name).exists() for name in DB_SIDECARS)


def restore(settings: Settings, src: Path | str) -> Backup:
    """Restore the backup at ``src`` (or the newest one under it) into ``settings.data_dir``, which must hold no
    database. Verifies the backup first; nothing is written unless it is whole."""
    found = find_backup(src)
    data_dir = settings.data_dir
    if has_database(data_dir):
        raise BackupError(
            f"{data_dir} already has a database ({settings.db_path}); restore only into a data dir without one: "
            "move it away first, or give another --data-dir."
        )
    verify(found)
    entries = found.manifest.get("files", [])
    # Files already there (an interrupted restore's, or a fresh app's) may stay only when they are the same.
    conflicts = [
        e["path"]
        for e in entries
        if (data_dir / e["path"]).exists()
        and not ((data_dir / e["path"]).is_file() and sha256_file(data_dir / e["path"]) == e["sha256"])
    ]
    if conflicts:
        shown = ", ".join(conflicts[:5]) + (f" and {len(conflicts) - 5} more" if len(conflicts) > 5 else "")
        raise BackupError(
            f"{data_dir} already has different files where the backup would put {shown}. Nothing restored."
        )
    # No data dir yet: stage next to it and rename the whole folder into place. One that exists (maybe empty, maybe
    # a volume's mount point, which cannot be replaced): stage inside it and move the files in, the database last.
    fresh = not data_dir.exists()
    parent = data_dir.resolve().parent
    for old in data_dir.glob(RESTORE_STAGE + "*") if not fresh else ():  # a restore cut short earlier
        shutil.rmtree(old, ignore_errors=True)
    prefix = f".{data_dir.resolve().name}.restore-" if fresh else RESTORE_STAGE
    try:
        parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=prefix, dir=parent if fresh else data_dir))
    except OSError as exc:  # read-only, not a real folder (/proc/self), no permission
        raise BackupError(f"Cannot write into the data dir {data_dir}: {exc.strerror or exc}.") from None
    try:
        for entry in entries:
            _, sha = copy_hashed(found.path / FILES / entry["path"], stage / entry["path"])
            if sha != entry["sha256"]:
                raise BackupCorruptError(f"{entry['path']} changed while it was restored. Nothing restored.")
        copy_hashed(found.path / DB_FILE, stage / DB_FILE)
        if fresh:
            os.replace(stage, data_dir)
        else:
            _move_in(stage, data_dir)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return found


def _move_in(stage: Path, data_dir: Path) -> None:
    """Move the staged files into a data dir that has other things in it; the database last, so a restore
    cut short leaves no database (and can simply be run again)."""
    for path in sorted(p for p in stage.rglob("*") if p.is_file() and p != stage / DB_FILE):
        target = data_dir / path.relative_to(stage)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
    os.replace(stage / DB_FILE, data_dir / DB_FILE)
    shutil.rmtree(stage, ignore_errors=True)
