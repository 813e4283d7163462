"""The app's loop scheduler: a daemon thread that, every ``check_s`` seconds, starts an update for each line
whose trigger fired (``update.claim`` makes that exactly one per line across processes, CLI included).

State lives in SQLite (lines, updates), so a restarted app simply carries on: the next check marks an update
whose process died as failed and starts the next one when it is due.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from llmplay.loop.lines import list_lines
from llmplay.loop.update import due, mark_dead, run_update
from llmplay.store import connect, immediate
from llmplay.worker import Worker

log = logging.getLogger(__name__)


@dataclass
class LineStatus:
    name: str
    due: bool
    why: str
    new_rows: int


def status(db_path) -> list[LineStatus]:
    with connect(db_path) as db:
        with immediate(db):
            mark_dead(db)
        return [LineStatus(line.name, *due(db, line)) for line in list_lines(db)]


class Scheduler:
    def __init__(self, engine, *, jobs, runner, check_s: float = 60.0, start: bool = True):
        self.engine, self.jobs, self.runner, self.check_s = engine, jobs, runner, check_s
        self.last: dict[str, str] = {}  # line -> what the last check said (shown in the Loop tab)
        self.last_check_at: str | None = None  # UTC ISO time of the last check that ran to its end
        self.worker = Worker("loop-scheduler", self.tick, check_s)
        if start:
            self.start()

    @property
    def last_error(self) -> str | None:
        return self.worker.last_error

    def start(self) -> None:
        self.worker.start()

    def close(self) -> None:
        self.worker.stop(timeout=5)

    def tick(self) -> list:
        """Run every due update now, one line after the other; returns the updates that ran."""
        ran = []
        for line in status(self.engine.settings.db_path):
            self.last[line.name] = line.why
            if not line.due:
                continue
            trigger = "rows" if "new accepted rows (trigger" in line.why else "interval"
            update = run_update(self.engine, line.name, jobs=self.jobs, runner=self.runner, trigger=trigger)
            if update is not None:
                ran.append(update)
                self.last[line.name] = f"update #{update.id} {update.status}"
        self.last_check_at = datetime.now(UTC).isoformat(timespec="seconds")
        return ran

    def health(self) -> dict:
        """For /health: whether the thread runs (``ok`` is False only when it should and does not)."""
        enabled = self.check_s > 0
        running = self.worker.running
        return {
            "ok": running or not enabled,
            "enabled": enabled,
            "running": running,
            "check_s": self.check_s,
            "last_check_at": self.last_check_at,
            "last_error": self.last_error,
        }
