"""An evaluation run's progress as the UI and the CLI show it, and the run states it moves through."""

from __future__ import annotations

from dataclasses import dataclass

from llmplay.eta import describe
from llmplay.processes import pid_alive
from llmplay.store import connect, immediate

ACTIVE = ("queued", "running")
TERMINAL = ("done", "cancelled", "failed", "interrupted")


@dataclass
class RunProgress:
    run_id: int
    status: str
    done: int
    total: int
    generated: int
    cached: int
    failed: int
    elapsed_s: float
    eta_s: float | None
    error: str = ""

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    def describe(self) -> str:
        text = f"Run #{self.run_id} {self.status}: {self.done}/{self.total} cells"
        text += f" · {self.generated} generated · {self.cached} from cache"
        if self.failed:
            text += f" · {self.failed} failed"
        text += f" · {self.elapsed_s:.1f} s"
        if self.eta_s is not None and not self.finished:
            text += f" · {describe(self.eta_s)}"  # counts down between chunks (runner.progress)
        if self.error:
            text += f" · {self.error}"
        return text


def mark_interrupted(db_path) -> int:
    """Runs left queued/running by a process that no longer exists are marked interrupted (rerun to resume:
    every finished cell is in the cache)."""
    with connect(db_path) as db:
        if "eval_runs" not in db.table_names():
            return 0
        stale = [
            r["id"]
            for r in db.query("select id, pid from eval_runs where status in ('queued', 'running')")
            if not _alive(r["pid"])
        ]
        with immediate(db):
            for run_id in stale:
                db["eval_runs"].update(
                    run_id, {"status": "interrupted", "error": "The app stopped during this run; rerun it to resume."}
                )
    return len(stale)


_alive = pid_alive
