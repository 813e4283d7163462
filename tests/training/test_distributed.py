"""The scale path and the process boundary, with real processes on the real SmolLM2: two CPU processes under
torchrun (gloo) run one job to the end with the same weights on both ranks; SIGTERM stops a job within seconds
keeping a checkpoint, and ``--resume`` finishes it from there."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmplay.models import registry
from llmplay.training import entry, records
from tests.training.tiny_jobs import entry_env, tiny_config, write_config

pytestmark = pytest.mark.slow
TORCHRUN = Path(sys.executable).parent / "torchrun"


def job_env(settings) -> dict[str, str]:
    return {**os.environ, **entry_env(settings), "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}


@pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun is not installed next to this Python")
def test_two_cpu_processes_train_one_job_to_the_same_weights(settings, tmp_path):
    config = tiny_config("ddp", max_steps=2, batch_size=2, data={"validation_fraction": 0.0})
    log = tmp_path / "torchrun.log"
    command = [str(TORCHRUN), "--standalone", "--nproc_per_node", "2", "-m", "llmplay.training.entry"]
    env = {**job_env(settings), "OMP_NUM_THREADS": "1"}  # one thread per process on two cores
    with open(log, "wb") as out:
        code = subprocess.call(
            [*command, str(write_config(tmp_path, config))], stdout=out, stderr=out, env=env, timeout=900
        )
    text = log.read_text(errors="replace")
    assert code == 0, text[-3000:]
    (job,) = records.list_jobs(settings.db_path)  # rank 0 made the row; rank 1 got its id
    assert job.status == "done" and job.step == 2
    assert registry.get_version(settings.db_path, job.version_id).label.endswith("ddp v1")
    folder = settings.data_dir / "training" / "jobs" / str(job.id)
    digests = [(folder / f"weights-rank{r}.sha256").read_text().strip() for r in (0, 1)]
    assert digests[0] == digests[1] and len(digests[0]) == 64
    train_rows = [r for r in records.progress(settings.db_path, job.id) if r["loss"] is not None]
    assert len(train_rows) == 2  # one row per logged step: only rank 0 writes


def test_sigterm_stops_a_job_with_a_checkpoint_and_resume_finishes_it(settings, tmp_path):
    config = tiny_config("stop", max_steps=8, batch_size=2, save_steps=1000, data={"validation_fraction": 0.0})
    path = write_config(tmp_path, config)
    log_path = tmp_path / "job.log"
    command = [sys.executable, "-m", "llmplay.training.entry", str(path)]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=log, env=job_env(settings), start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while True:
            jobs = records.list_jobs(settings.db_path) if settings.db_path.exists() else []
            if jobs and (jobs[0].step or 0) >= 2:
                break
            assert process.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, "the job made no progress"
            time.sleep(0.5)
        signalled = time.monotonic()
        os.killpg(process.pid, signal.SIGTERM)
        code = process.wait(timeout=120)
        stopped_in = time.monotonic() - signalled
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert code == entry.CANCELLED, log_path.read_text()[-3000:]
    assert stopped_in < 60  # the step in progress, one checkpoint, exit
    job = records.get_job(settings.db_path, jobs[0].id)
    assert job.status == "cancelled" and job.checkpoint and Path(job.checkpoint).is_dir()
    stopped_at = json.loads((Path(job.checkpoint) / "trainer_state.json").read_text())["global_step"]
    assert 2 <= stopped_at < 8 and job.version_id is None

    resumed = subprocess.run(
        [*command, "--job", str(job.id), "--resume"], env=job_env(settings), capture_output=True, text=True, timeout=900
    )
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert f"from {job.checkpoint}" in resumed.stdout
    done = records.get_job(settings.db_path, job.id)
    assert done.status == "done" and done.step == 8 and done.version_id
    steps = [r["step"] for r in records.progress(settings.db_path, job.id) if r["loss"] is not None]
    assert steps[-1] == 8 and steps.count(1) == 1 and steps.count(stopped_at + 1) == 1  # continued, not restarted
