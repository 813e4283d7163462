"""The app side of training: a queue of jobs, each run as a child process of ``llmplay.training.entry``.

Training never runs in the app process (it would hold the GIL, grow the app by gigabytes, and die with it).
``JobRunner.submit`` validates the config and adds a ``queued`` row; a daemon thread starts queued jobs as
child processes, at most ``slots`` at a time (one by default: two jobs on a 2-core machine only thrash).
The child's stdout/stderr go to ``<data_dir>/training/jobs/<id>/job.log``, a file and never a pipe: a pipe
nobody drains fills up and freezes the child. The child writes its own status and progress rows (records.py);
this side watches the process, so a job whose process dies without saying so is marked failed.

State lives in SQLite, so a new runner (an app restart) re-attaches to a job whose process still runs and
marks one whose process is gone as failed. Cancel sends SIGTERM to the job's process group (the child saves
a checkpoint and stops), then SIGKILL after a grace period; Resume requeues the job, which then starts with
``--resume`` and continues from its last checkpoint.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from llmplay.errors import LlmplayError, UnknownModelError
from llmplay.models import registry
from llmplay.models.catalog import Catalog
from llmplay.processes import pid_alive
from llmplay.settings import Settings
from llmplay.store import connect
from llmplay.tempfiles import sweep, temp_root
from llmplay.training import records
from llmplay.training.config import TrainConfig
from llmplay.training.data_files import check_place, sweep_unused_uploads
from llmplay.training.records import Job
from llmplay.training.tasks import get_task
from llmplay.worker import Worker

log = logging.getLogger(__name__)

ENTRY = ("-m", "llmplay.training.entry")
CANCEL_GRACE_S = 30.0  # SIGTERM -> SIGKILL: long enough for the step in progress plus a checkpoint
UPLOAD_SWEEP_S = 3600.0
JOB_NICE = 10  # the training process's CPU niceness (LLMPLAY_JOB_NICE overrides it); see _start_queued
DIED = "The training process died (pid {pid}) without finishing. Resume continues from the last checkpoint."


class JobError(LlmplayError):
    pass


def jobs_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "training" / "jobs"


def job_dir(data_dir: Path, job_id: int) -> Path:
    return jobs_dir(data_dir) / str(job_id)


def settings_env(settings: Settings, prompts_dir: Path | None = None) -> dict[str, str]:
    """The environment that makes ``Settings.from_env()`` in the child equal ``settings`` (absolute paths:
    the child's working directory is the app's, but nothing should depend on it)."""
    env = {
        "LLMPLAY_DATA_DIR": str(Path(settings.data_dir).resolve()),
        "LLMPLAY_CACHE_DIR": str(Path(settings.cache_dir).resolve()),
        "LLMPLAY_PROMPTS_DIR": str(Path(prompts_dir or settings.prompts_dir).resolve()),
        "LLMPLAY_MODELS_FILE": str(Path(settings.models_file).resolve()),
        "LLMPLAY_DEFAULT_MODEL": settings.default_model,
        "LLMPLAY_DTYPE": settings.dtype,
    }
    for name, var, sep in (
        ("allowed_model_dirs", "LLMPLAY_ALLOWED_MODEL_DIRS", os.pathsep),
        ("allowed_key_envs", "LLMPLAY_ALLOWED_KEY_ENVS", ","),
        ("allowed_endpoints", "LLMPLAY_ALLOWED_ENDPOINTS", ","),
    ):
        values = getattr(settings, name, ())
        if values:
            env[var] = sep.join(str(v) for v in values)
    return env


def process_alive(pid: int | None, job_id: int | None = None) -> bool:
    """True while ``pid`` runs and is this job's training process (not a zombie, nor a recycled pid: its
    command line names the job, or llmplay for a job started from a shell)."""
    if not pid:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return _signal_alive(pid) if not Path("/proc/self").exists() else False  # no /proc (macOS): best effort
    state = stat.rpartition(")")[2].split()[0]  # the command name may contain spaces and parentheses
    if state in ("Z", "X"):
        return False
    return (job_id is not None and f"--job {job_id}" in cmdline) or "llmplay" in cmdline


_signal_alive = pid_alive


def _signal_group(pid: int, sig: int) -> None:
    """Signal the job's whole process group (a job the app started leads its own: start_new_session), so
    torchrun's workers and any data-loader processes stop too; a job started from a shell gets the signal alone."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def tail(path: Path | str | None, lines: int = 50, max_bytes: int = 64 * 1024) -> str:
    """The last ``lines`` lines of a text file, reading at most ``max_bytes`` from its end."""
    if not path:
        return ""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace").replace("\r\n", "\n")
    # Progress bars redraw with carriage returns: keep only the last state of each line.
    shown = [line.rsplit("\r", 1)[-1] for line in text.split("\n")]
    if size > max_bytes:
        shown = shown[1:]  # the first line was cut in the middle
    while shown and not shown[-1]:
        shown.pop()
    return "\n".join(shown[-lines:])


@dataclass
class _Watched:
    job_id: int
    pid: int
    process: subprocess.Popen | None  # None: a job this runner re-attached to (or one started from a shell)
    kill_at: float | None = None  # after a cancel: SIGKILL if it still runs then


class JobRunner:
    """One per app. ``slots``: jobs that may run at once (default ``settings.training_slots``, else 1).

    ``entry``: the Python arguments that run a job (tests substitute a small fake); the config path, ``--job
    ID`` and, when resuming, ``--resume`` are appended. ``start=False`` leaves the background thread off
    (call ``poll`` yourself)."""

    def __init__(
        self,
        settings: Settings,
        *,
        slots: int | None = None,
        prompts_dir: Path | str | None = None,
        entry: Sequence[str] = ENTRY,
        poll_s: float = 1.0,
        cancel_grace_s: float = CANCEL_GRACE_S,
        catalog=None,
        start: bool = True,
    ):
        self.settings = settings
        self.slots = max(1, int(slots or settings.training_slots))
        self.prompts_dir = Path(prompts_dir) if prompts_dir else None
        self.entry = tuple(entry)
        self.poll_s = poll_s
        self.cancel_grace_s = cancel_grace_s
        self.catalog = catalog if catalog is not None else Catalog(settings.models_file)
        self._watched: dict[int, _Watched] = {}
        self._lock = threading.RLock()
        self._swept: float | None = None  # when _background last swept uploads and temp files
        self.worker = Worker("training-jobs", self._background, poll_s)
        self.poll()  # re-attach (or mark failed) at once, before anyone reads the job list
        if start:
            self.start()

    @property
    def db_path(self) -> Path:
        return self.settings.db_path

    # ---- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> None:
        self.worker.start()

    def close(self) -> None:
        """Stop watching; running jobs keep running (a new runner re-attaches to them)."""
        self.worker.stop(timeout=5)

    def _background(self) -> None:
        """The worker's step: watch the jobs; sweep unused uploads and stale temp files at start, then hourly."""
        self.poll()
        if self._swept is None or time.monotonic() - self._swept > UPLOAD_SWEEP_S:
            self._swept = time.monotonic()
            self.sweep_uploads()
            sweep(temp_root(self.settings))  # and day-old Gradio uploads, not only at start-up

    # ---- public ------------------------------------------------------------------------------------------
    def submit(self, config: TrainConfig | dict, user: str | None = None) -> Job:
        """Validate ``config`` (raising with every problem) and queue it; it starts when a slot is free."""
        if not isinstance(config, TrainConfig):
            config = TrainConfig.from_dict(config)
        config.validate()
        self.check(config)
        if config.data.file:  # the app's jobs read uploads only, never the database or the server's files
            check_place(self.settings, config.data.file, JobError)
        with self._lock:  # the count and the new row together: two submits cannot both take the last place
            self._check_queue_room()
            job = records.create_job(self.db_path, config.to_dict(), user=user)
        folder = job_dir(self.settings.data_dir, job.id)
        folder.mkdir(parents=True, exist_ok=True)
        config_path = folder / "config.yaml"
        config_path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True), encoding="utf-8")
        records.update_job(self.db_path, job.id, log_path=str(folder / "job.log"), output_dir=str(folder))
        self.poll()
        return records.get_job(self.db_path, job.id)

    def _check_queue_room(self) -> None:
        """A cap on waiting jobs: each holds its config and upload on disk until it runs."""
        limit = self.settings.training_queue_max
        with connect(self.db_path) as db:
            queued = db["training_jobs"].count_where("status = ?", ["queued"])
        if queued >= limit:
            raise JobError(
                f"{queued} training jobs are queued already, the most this instance allows; wait for one to start "
                f"or cancel one (setting training_queue_max, env LLMPLAY_TRAINING_QUEUE_MAX)."
            )

    def sweep_uploads(self) -> int:
        """Delete the kept training uploads that no job on record (queued, running or finished, so a failed
        job can still resume) refers to; returns how many went."""
        removed = sweep_unused_uploads(self.settings)
        if removed:
            log.info("Removed %d training upload(s) no job uses", removed)
        return removed

    def check(self, config: TrainConfig) -> None:
        """The checks that need the catalog or the registry but no model: the base model exists and suits the
        task, and a parent version exists and was trained on the same base."""
        trained = registry.find(self.db_path, config.base_model)
        if trained is not None:
            raise JobError(
                f"{config.base_model!r} is a trained version: set base_model to {trained.base_model!r} and "
                f"parent_version to {trained.label!r} to continue training it."
            )
        try:
            spec = self.catalog.get(config.base_model)
        except UnknownModelError as exc:
            raise JobError(str(exc)) from None
        if spec.provider != "local":
            raise JobError(f"{config.base_model!r} is an endpoint model; training needs local weights.")
        problem = get_task(config.task).check_model(config, spec.kind)
        if problem:
            raise JobError(problem)
        if config.parent_version:
            try:
                registry.parent_version(self.db_path, config.parent_version, config.base_model)
            except registry.ParentVersionError as exc:
                raise JobError(str(exc)) from None

    def cancel(self, job_id: int) -> Job:
        """Stop a job: a queued one at once; a running one gets SIGTERM (it saves a checkpoint and stops
        within seconds), and SIGKILL after the grace period if it is still there."""
        with self._lock:
            job = self.get(job_id)
            if job.status == "queued":
                records.update_job(self.db_path, job_id, status="cancelled", finished_at=records.now())
            elif job.status == "running":
                records.update_job(self.db_path, job_id, cancel_requested=1)
                watched = self._watched.get(job_id)
                pid = watched.pid if watched else job.pid
                if pid:
                    _signal_group(pid, signal.SIGTERM)
                if watched:
                    watched.kill_at = time.monotonic() + self.cancel_grace_s
            else:
                raise JobError(f"Job #{job_id} is {job.status}; only a queued or running job can be cancelled.")
        return self.get(job_id)

    def resume(self, job_id: int) -> Job:
        """Queue a cancelled or failed job again; it continues from its last checkpoint (``--resume``)."""
        self._wait_exit(job_id)
        with self._lock:
            job = self.get(job_id)
            if job.status not in ("cancelled", "failed"):
                raise JobError(f"Job #{job_id} is {job.status}; only a cancelled or failed job can be resumed.")
            if job_id in self._watched:
                raise JobError(f"Job #{job_id}'s process is still stopping; resume it in a few seconds.")
            config = TrainConfig.from_dict(job.config)  # the same checks as a new job: the parent may be gone
            self.check(config)
            records.update_job(
                self.db_path, job_id, status="queued", cancel_requested=0, error=None, finished_at=None, pid=None
            )
        self.poll()
        return self.get(job_id)

    def _wait_exit(self, job_id: int, timeout: float = 10.0) -> None:
        """A job that just wrote its final status may still be closing: give its process time to exit."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll()
            with self._lock:
                if job_id not in self._watched:
                    return
            time.sleep(0.1)

    def get(self, job_id: int) -> Job:
        try:
            return records.get_job(self.db_path, int(job_id))
        except Exception:
            raise JobError(f"No training job #{job_id}.") from None

    def jobs(self, limit: int = 50) -> list[Job]:
        return records.list_jobs(self.db_path, limit=limit)

    def log_tail(self, job_id: int, lines: int = 50) -> str:
        job = self.get(job_id)
        return tail(job.log_path or job_dir(self.settings.data_dir, job.id) / "job.log", lines)

    def running(self) -> list[int]:
        with self._lock:
            return sorted(self._watched)

    def wait(self, job_id: int, timeout: float = 600.0, statuses: Sequence[str] = records.FINAL) -> Job:
        """Block until the job reaches one of ``statuses`` (default: finished, and its process gone); raises
        JobError on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            self.poll()
            job = self.get(job_id)
            with self._lock:  # a finished job's process may still be closing: wait for it to exit too
                settled = job.status not in records.FINAL or job_id not in self._watched
            if job.status in statuses and settled:
                return job
            if time.monotonic() > deadline:
                raise JobError(f"Job #{job_id} is still {job.status} after {timeout:.0f} s.")
            time.sleep(min(0.2, self.poll_s))

    # ---- the watcher -------------------------------------------------------------------------------------
    def poll(self) -> None:
        """One round: finish jobs whose process ended, enforce cancel deadlines, adopt running jobs this
        runner does not know (app restart, `llmplay train` from a shell), start queued jobs in free slots."""
        with self._lock:
            for watched in list(self._watched.values()):
                self._check(watched)
            self._adopt()
            self._start_queued()

    def _check(self, watched: _Watched) -> None:
        if watched.process is not None:
            code = watched.process.poll()
            alive = code is None
        else:
            code, alive = None, process_alive(watched.pid, watched.job_id)
        if alive:
            if watched.kill_at is not None and time.monotonic() > watched.kill_at:
                log.warning("Training job %s ignored SIGTERM; killing it", watched.job_id)
                _signal_group(watched.pid, signal.SIGKILL)
                watched.kill_at = None
            return
        del self._watched[watched.job_id]
        self._finish(watched.job_id, watched.pid, code)

    def _finish(self, job_id: int, pid: int, code: int | None) -> None:
        """The process is gone: keep the status it wrote, or say why it stopped when it could not."""
        job = self.get(job_id)
        if job.status != "running":  # it wrote its own final status (or was requeued since)
            return
        if job.cancel_requested:
            records.update_job(self.db_path, job_id, status="cancelled", finished_at=records.now())
            return
        error = DIED.format(pid=pid)
        if code is not None:
            error = f"The training process exited with code {code} without finishing."
            if code < 0:
                error = f"The training process was killed by signal {-code} without finishing."
        last = [line for line in self.log_tail(job_id, 20).splitlines() if line.strip()]
        if last:
            error += f" Last log line: {last[-1][:500]}"
        records.update_job(self.db_path, job_id, status="failed", error=error, finished_at=records.now())

    def _adopt(self) -> None:
        for job in self._active_jobs("running"):
            if job.id in self._watched:
                continue
            if process_alive(job.pid, job.id):
                self._watched[job.id] = _Watched(job.id, job.pid, None)
            elif job.pid or _stale(job):
                # A row marked running whose process is gone: the app (or the machine) stopped meanwhile.
                self._finish(job.id, job.pid or 0, None)

    def _start_queued(self) -> None:
        free = self.slots - len(self._watched)
        if free <= 0:
            return
        for job in reversed(self._active_jobs("queued")):  # oldest first
            if free <= 0:
                break
            if self._claim(job.id):
                self._spawn(job)
                free -= 1

    def _active_jobs(self, status: str) -> list[Job]:
        with connect(self.db_path) as db:
            rows = list(db["training_jobs"].rows_where("status = ?", [status], order_by="id desc"))
        return [Job.from_row(r) for r in rows]

    def _claim(self, job_id: int) -> bool:
        """queued -> running in one statement, so two app processes never start the same job."""
        with connect(self.db_path) as db, db.conn:
            cursor = db.execute(
                "update training_jobs set status = 'running', pid = null, started_at = coalesce(started_at, ?) "
                "where id = ? and status = 'queued'",
                [records.now(), job_id],
            )
            return cursor.rowcount == 1

    def _spawn(self, job: Job) -> None:
        folder = job_dir(self.settings.data_dir, job.id)
        folder.mkdir(parents=True, exist_ok=True)
        config_path = folder / "config.yaml"
        if not config_path.exists():  # a job queued by another tool with only its row
            config_path.write_text(yaml.safe_dump(job.config, sort_keys=False), encoding="utf-8")
        log_path = Path(job.log_path or folder / "job.log")
        # A job that started before (Resume, or requeued after a crash) continues from its last checkpoint.
        resume = job.started_at is not None
        command = [sys.executable, *self.entry, str(config_path), "--job", str(job.id)] + (
            ["--resume"] if resume else []
        )
        env = {**os.environ, **settings_env(self.settings, self.prompts_dir)}
        env.update(PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false")
        # Training is background work: at a lower CPU priority the app's own requests (a labeling submit, a
        # Playground reply) win the cores when both want them, and the job still gets every idle cycle
        # (bench/responsiveness.py measures both). LLMPLAY_JOB_NICE=0 turns it off.
        env.setdefault("LLMPLAY_JOB_NICE", str(JOB_NICE))
        try:
            with open(log_path, "ab") as out:  # the child keeps its own handle; ours closes at once
                out.write(f"==> {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(command)}\n".encode())
                out.flush()
                process = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,  # its own process group: cancel signals the group, and a
                    close_fds=True,  # Ctrl-C in the app's terminal does not reach the job
                )
        except OSError as exc:
            records.update_job(
                self.db_path, job.id, status="failed", error=f"Could not start the training process: {exc}",
                finished_at=records.now(),
            )  # fmt: skip
            return
        records.update_job(self.db_path, job.id, pid=process.pid, log_path=str(log_path), output_dir=str(folder))
        # The tab shows this phase (and its seconds) until the process has loaded its libraries and says more.
        records.write_phase(folder, phase="starting", detail="the training process", since=time.time())
        self._watched[job.id] = _Watched(job.id, process.pid, process)


def _stale(job: Job, after_s: float = 120.0) -> bool:
    """A running row with no pid for a while: claimed, but the process never started (the app died in
    between). Not at once: another app process may be between its claim and its spawn."""
    if job.pid is not None or not job.started_at:
        return False
    try:
        started = datetime.fromisoformat(job.started_at)
    except ValueError:
        return True
    return (datetime.now(UTC) - started).total_seconds() > after_s
