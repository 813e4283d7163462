"""The job runner with the real training entry on the real SmolLM2: a tiny LoRA job (a few steps, a few rows,
64 tokens) runs as a child process, cancel stops it within seconds keeping a checkpoint, resume finishes it and
registers a version, and an error inside the job (a target module the model lacks) marks it failed with the
message. Each job loads SmolLM2 in its own process (not the test process)."""

from __future__ import annotations

import time

import pytest

from llmplay.models import registry
from llmplay.training import records
from llmplay.training.jobs import JobRunner, process_alive
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


@pytest.fixture()
def runner(settings):
    r = JobRunner(settings, poll_s=0.5, cancel_grace_s=60)
    yield r
    for job in r.jobs():
        if job.status in records.ACTIVE:
            r.cancel(job.id)
    r.close()


def test_cancel_keeps_a_checkpoint_and_resume_finishes_and_registers_a_version(runner, settings):
    job = runner.submit(tiny("real-cancel", steps=14, save_steps=2))
    deadline = time.monotonic() + 600
    while (runner.get(job.id).step or 0) < 4:
        assert runner.get(job.id).status == "running", runner.log_tail(job.id)
        assert time.monotonic() < deadline, "the job made no progress"
        time.sleep(0.5)
    pid = runner.get(job.id).pid
    asked = time.monotonic()
    runner.cancel(job.id)
    cancelled = runner.wait(job.id, timeout=120)
    stopped_s = time.monotonic() - asked
    assert cancelled.status == "cancelled", (cancelled.error, runner.log_tail(job.id))
    assert not process_alive(pid, job.id)
    assert stopped_s < 30, f"the job took {stopped_s:.0f} s to stop"
    assert cancelled.checkpoint, runner.log_tail(job.id)
    seen = max(r["id"] for r in records.progress(settings.db_path, job.id))

    runner.resume(job.id)
    done = runner.wait(job.id, timeout=900)
    assert done.status == "done", (done.error, runner.log_tail(job.id))
    after = [r["step"] for r in records.progress(settings.db_path, job.id, after_id=seen) if r.get("loss") is not None]
    assert after and max(after) == 14
    assert min(after) > 2  # continued from the checkpoint, not from step 1
    version = registry.get_version(settings.db_path, done.version_id)
    assert version.label == f"{CHAT_MODEL} + real-cancel v1" and version.job_id == job.id
    assert (version.config or {}).get("max_steps") == 14


def test_an_error_inside_the_job_marks_it_failed_with_the_message(runner):
    job = runner.submit(tiny("real-bad-modules", steps=2, target_modules=["nope_proj"]))
    failed = runner.wait(job.id, timeout=600)
    assert failed.status == "failed"
    assert "nope_proj" in failed.error, failed.error
