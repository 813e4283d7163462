"""The backup schedule of a hosted instance (Hugging Face Spaces, ``docker run``): a restore at start-up when the
local database is missing, then a backup every interval into a mounted folder (``LLMPLAY_BACKUP_DIR``) and a last
one at shutdown. The backups themselves are ``backup.py``'s.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from llmplay.backup import BackupCorruptError, BackupError, backup, has_database, list_backups, restore
from llmplay.settings import Settings
from llmplay.worker import Worker

log = logging.getLogger(__name__)

DEFAULT_KEEP = 5
DEFAULT_INTERVAL_S = 600


@dataclass(frozen=True)
class BackupSchedule:
    """Where and how often the app backs itself up (Spaces: a mounted Storage Bucket folder, since the Space's
    local disk is lost on restart and a bucket has no file locking for the live database)."""

    folder: Path | None = None  # LLMPLAY_BACKUP_DIR; None: no scheduled backups, no restore at start
    interval_s: float = DEFAULT_INTERVAL_S  # LLMPLAY_BACKUP_INTERVAL_S
    keep: int = DEFAULT_KEEP  # LLMPLAY_BACKUP_KEEP

    @classmethod
    def from_env(cls, env=None) -> BackupSchedule:
        env = os.environ if env is None else env
        values = {}
        numbers = (("interval_s", "LLMPLAY_BACKUP_INTERVAL_S", float), ("keep", "LLMPLAY_BACKUP_KEEP", int))
        for key, name, kind in numbers:
            raw = (env.get(name) or "").strip()
            if raw:
                try:
                    values[key] = kind(raw)
                except ValueError:
                    raise BackupError(f"Environment variable {name}={raw!r} must be a number.") from None
        folder = (env.get("LLMPLAY_BACKUP_DIR") or "").strip()
        schedule = cls(folder=Path(folder) if folder else None, **values)
        if schedule.interval_s < 10:
            raise BackupError(f"LLMPLAY_BACKUP_INTERVAL_S must be at least 10 seconds; got {schedule.interval_s:g}.")
        if schedule.keep < 1:
            raise BackupError(f"LLMPLAY_BACKUP_KEEP must be at least 1; got {schedule.keep}.")
        return schedule


def restore_at_start(settings: Settings, schedule: BackupSchedule | None = None) -> str | None:
    """When a backup folder is set and the local database is missing (a Space that restarted), restore the
    newest backup that verifies (older ones if it does not); returns the backup's path, or None."""
    schedule = schedule or BackupSchedule.from_env()
    if schedule.folder is None or has_database(settings.data_dir):
        return None
    backups = list_backups(schedule.folder)
    if not backups:
        log.info("No backup in %s to restore; starting with an empty data dir.", schedule.folder)
        return None
    for found in reversed(backups):
        try:
            restore(settings, found.path)
        except BackupCorruptError as exc:
            log.warning("Skipping a damaged backup: %s", exc)
            continue
        log.warning("Restored %s (made %s) into %s.", found.path, found.created_at, settings.data_dir)
        return str(found.path)
    raise BackupError(f"Every backup in {schedule.folder} is damaged; nothing restored (see the log).")


class ScheduledBackups:
    """Backs the data dir up into ``schedule.folder`` every ``schedule.interval_s`` (keeping ``keep``) on a
    background worker (llmplay/worker.py); a failed backup is logged and tried again at the next interval.
    ``stop(final=True)`` takes one last backup."""

    def __init__(self, settings: Settings, schedule: BackupSchedule):
        self.settings, self.schedule = settings, schedule
        self.worker = Worker("llmplay-backups", self.run_once, schedule.interval_s)
        self.made: list[Path] = []
        self.errors: list[str] = []

    def start(self) -> None:
        self.worker.start()

    def is_alive(self) -> bool:
        return self.worker.running

    def run_once(self) -> Path | None:
        try:
            made = backup(self.settings, self.schedule.folder, keep=self.schedule.keep)
        except Exception as exc:  # the app keeps serving; the next interval tries again
            log.exception("Scheduled backup into %s failed", self.schedule.folder)
            self.errors.append(f"{type(exc).__name__}: {exc}")
            return None
        self.made.append(made.path)
        return made.path

    def stop(self, final: bool = False, timeout: float = 60) -> None:
        self.worker.stop(timeout)  # waits for a backup in progress
        if final and self.settings.db_path.is_file():
            self.run_once()


def start_scheduled_backups(settings: Settings, schedule: BackupSchedule | None = None) -> ScheduledBackups | None:
    """Start the backup thread when LLMPLAY_BACKUP_DIR (``schedule.folder``) is set; else None."""
    schedule = schedule or BackupSchedule.from_env()
    if schedule.folder is None:
        return None
    thread = ScheduledBackups(settings, schedule)
    thread.start()
    return thread


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def scheduled_backups(settings: Settings, schedule: BackupSchedule | None = None) -> Iterator[ScheduledBackups | None]:
    """``start_scheduled_backups`` for the length of a block (the server's run), with a last backup when it
    ends: a Space being restarted or ``docker stop`` sends SIGTERM, so the newest writes are kept."""
    thread = start_scheduled_backups(settings, schedule)
    previous = None
    if thread is not None and threading.current_thread() is threading.main_thread():
        # uvicorn shuts down gracefully on SIGTERM and then raises it again; with the default action that kills
        # the process before this block ends. As SystemExit it unwinds through here and the last backup runs.
        previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        yield thread
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if thread is not None:
            thread.stop(final=True)
