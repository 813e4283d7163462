"""The job runner with the real training entry on the real SmolLM2: a tiny LoRA job (a few steps, a few rows,
64 tokens) runs as a child process, cancel stops it within seconds keeping a checkpoint, resume finishes it and
registers a version, and an error inside the job (a target module the model lacks) marks it failed with the
message. Each job loads SmolLM2 in its own process (not the test process)."""

from __future__ import annotations

import time

import pytest

from llmplay.models import registry
from llmplay.training import records
from llmplay.training.jobs import JobError, JobRunner, process_alive
from tests.conftest import CHAT_MODEL

pytestmark = [
    pytest.mark.slow,
]

ROWS = [{"prompt": f"Is '{w}' good or bad? One word.", "completion": label} for w, label in
        [("great", "good"), ("awful", "bad"), ("lovely", "good"), ("terrible", "bad"), ("fine", "good"),
         ("horrid", "bad"), ("superb", "good"), ("dreadful", "bad")]]  # fmt: skip


def tiny(name: str, steps: int, **extra) -> dict:
    return {
        "name": name,
        "base_model": CHAT_MODEL,
        "method": "lora",
        "lora_r": 4,
        "lora_alpha": 8,
        "target_modules": ["q_proj", "v_proj"],
        "max_steps": steps,
        "batch_size": 2,
        "max_length": 64,
        "logging_steps": 1,
        "learning_rate": 1e-3,
        "data": {"source": "rows", "rows": ROWS, "validation_fraction": 0.25},
        **extra,
    }


STALL_S = 900  # a job that writes no progress row for this long is stuck; a slow one only takes longer


def settle(runner, job_id: int, stall_s: float = STALL_S):
    """``runner.wait`` for a final status with no total deadline: on a busy machine a niced job may take an hour
    (an evaluation of two rows took 64 s); the test fails only when the job stops making progress."""
    newest, changed = None, time.monotonic()
    while True:
        try:
            return runner.wait(job_id, timeout=30)
        except JobError:
            rows = records.progress(runner.db_path, job_id)
            if rows and rows[-1]["id"] != newest:
                newest, changed = rows[-1]["id"], time.monotonic()
            assert time.monotonic() - changed < stall_s, f"job #{job_id} wrote no progress in {stall_s} s"


@pytest.fixture()
def runner(settings):
    # No SIGKILL while a test waits: on a busy machine the niced job's step in progress and its checkpoint may take
    # minutes, and the cancel test must see the job stop by itself.
    r = JobRunner(settings, poll_s=0.5, cancel_grace_s=3600)
    yield r
    for job in r.jobs():
        if job.status in records.ACTIVE:
            r.cancel(job.id)
    r.close()


def test_cancel_keeps_a_checkpoint_and_resume_finishes_and_registers_a_version(runner, settings):
    job = runner.submit(tiny("real-cancel", steps=14, save_steps=2))
    step, changed = 0, time.monotonic()
    while step < 4:
        assert runner.get(job.id).status == "running", runner.log_tail(job.id)
        if (runner.get(job.id).step or 0) != step:
            step, changed = runner.get(job.id).step, time.monotonic()
        assert time.monotonic() - changed < STALL_S, "the job made no progress"
        time.sleep(0.5)
    running = runner.get(job.id)
    runner.cancel(job.id)
    cancelled = settle(runner, job.id)
    assert cancelled.status == "cancelled", (cancelled.error, runner.log_tail(job.id))
    assert not process_alive(running.pid, job.id)
    # "Within seconds" counted in steps, which a slow machine does not change: the job stopped by itself (its own
    # summary line; no SIGKILL) at the end of the step in progress, with a checkpoint of that step.
    assert '"status": "cancelled"' in runner.log_tail(job.id), runner.log_tail(job.id)
    steps = [r["step"] for r in records.progress(settings.db_path, job.id)]
    assert max(steps) <= running.step + 2, (running.step, steps)
    assert cancelled.checkpoint and cancelled.checkpoint.endswith(f"checkpoint-{max(steps)}"), cancelled.checkpoint
    seen = max(r["id"] for r in records.progress(settings.db_path, job.id))

    runner.resume(job.id)
    done = settle(runner, job.id)
    assert done.status == "done", (done.error, runner.log_tail(job.id))
    after = [r["step"] for r in records.progress(settings.db_path, job.id, after_id=seen) if r.get("loss") is not None]
    assert after and max(after) == 14
    assert min(after) > 2  # continued from the checkpoint, not from step 1
    version = registry.get_version(settings.db_path, done.version_id)
    assert version.label == f"{CHAT_MODEL} + real-cancel v1" and version.job_id == job.id
    assert (version.config or {}).get("max_steps") == 14


def test_an_error_inside_the_job_marks_it_failed_with_the_message(runner):
    job = runner.submit(tiny("real-bad-modules", steps=2, target_modules=["nope_proj"]))
    failed = settle(runner, job.id, stall_s=1800)  # it fails before its first step
    assert failed.status == "failed"
    assert "nope_proj" in failed.error, failed.error
