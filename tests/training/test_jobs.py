"""The job runner: a queue of child processes, cancel/resume, re-attaching after an app restart.

These tests run the runner against tests/training/fake_entry.py (same command-line and SQLite contract as
llmplay.training.entry, no model), so they check the runner itself in seconds; tests/training/test_jobs_real.py
runs the real entry on SmolLM2.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmplay.models import registry
from llmplay.settings import Settings
from llmplay.training import records
from llmplay.training.config import TrainConfigError
from llmplay.training.jobs import JOB_NICE, JobError, JobRunner, job_dir, process_alive, tail

FAKE = ("-m", "tests.training.fake_entry")


def config(name: str = "unit", steps: int = 5, **extra) -> dict:
    return {
        "name": name,
        "base_model": "smollm2-135m-instruct",
        "max_steps": steps,
        "data": {"source": "rows", "rows": [{"prompt": "2+2=", "completion": "4"}]},
        **extra,
    }


@pytest.fixture()
def runner(settings):
    r = JobRunner(settings, entry=FAKE, poll_s=0.1, cancel_grace_s=5)
    yield r
    r.close()
    for pid in [j.pid for j in r.jobs() if j.status == "running" and j.pid]:
        _kill(pid)


def _kill(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.killpg(pid, 9)


def wait_for(predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_second_job_waits_in_the_queue_until_the_first_ends(runner):
    first = runner.submit(config("first", steps=8))
    second = runner.submit(config("second", steps=2))
    assert runner.get(first.id).status == "running"
    assert runner.get(second.id).status == "queued"
    assert runner.running() == [first.id]
    done = runner.wait(first.id, timeout=30)
    assert done.status == "done"
    assert runner.wait(second.id, timeout=30).status == "done"
    assert runner.get(second.id).started_at >= done.finished_at  # started only after the first ended
    assert [row["step"] for row in records.progress(runner.db_path, second.id)] == [1, 2]


def test_two_slots_run_two_jobs_at_once(settings, monkeypatch):
    monkeypatch.setenv("LLMPLAY_TRAINING_SLOTS", "2")
    assert Settings.from_env().training_slots == 2  # the setting for more than one job at a time
    runner = JobRunner(settings.with_(training_slots=2), entry=FAKE, poll_s=0.1)
    try:
        a, b = runner.submit(config("a", steps=6)), runner.submit(config("b", steps=6))
        assert {runner.get(a.id).status, runner.get(b.id).status} == {"running"}
        assert runner.wait(a.id).status == runner.wait(b.id).status == "done"
    finally:
        runner.close()


def test_the_child_writes_to_a_log_file_and_the_job_row_knows_it(runner, settings):
    job = runner.submit(config(steps=2))
    finished = runner.wait(job.id)
    assert finished.status == "done"
    log_path = Path(finished.log_path)
    assert log_path == job_dir(settings.data_dir, job.id) / "job.log"
    assert "fake entry: done" in runner.log_tail(job.id)
    assert (log_path.parent / "config.yaml").exists()
    assert finished.pid and not process_alive(finished.pid, job.id)


def test_the_child_runs_at_a_lower_cpu_priority(runner, monkeypatch):
    monkeypatch.delenv("LLMPLAY_JOB_NICE", raising=False)
    finished = runner.wait(runner.submit(config(steps=1)).id)
    assert f"LLMPLAY_JOB_NICE={JOB_NICE}" in runner.log_tail(finished.id)
    # The real entry applies it before torch starts threads; a niceness only grows, so check in a child.
    probe = "import os; from llmplay.processes import lower_priority as lp; lp('10'); print(os.nice(0))"
    base = int(subprocess.check_output([sys.executable, "-c", "import os; print(os.nice(0))"], text=True))
    shown = subprocess.check_output([sys.executable, "-c", probe], text=True)
    assert int(shown) == min(base + 10, 19)
    off = subprocess.check_output([sys.executable, "-c", probe.replace("lp('10')", "lp('0')")], text=True)
    assert int(off) == base
    # In its own session (as the runner starts it) the job also lowers its autogroup, which is what the kernel
    # weighs against the app's group when autogroup scheduling is on.
    if Path("/proc/self/autogroup").exists():
        group = probe.replace("print(os.nice(0))", "print(open('/proc/self/autogroup').read())")
        shown = subprocess.check_output([sys.executable, "-c", group], text=True, start_new_session=True)
        assert shown.split()[-1] == "10", shown


def test_cancel_stops_the_process_within_seconds_keeps_the_checkpoint_and_resume_finishes(runner):
    job = runner.submit(config("long", steps=200))
    wait_for(lambda: (runner.get(job.id).step or 0) >= 3, what="a few steps")
    pid = runner.get(job.id).pid
    started = time.monotonic()
    runner.cancel(job.id)
    wait_for(lambda: not process_alive(pid, job.id), timeout=10, what="the process to end")
    assert time.monotonic() - started < 5
    cancelled = runner.wait(job.id, timeout=10)
    assert cancelled.status == "cancelled"
    checkpoint = Path(cancelled.checkpoint)
    assert checkpoint.is_dir()
    stopped_at = int(checkpoint.name.split("-")[1])
    assert stopped_at >= 3

    # Resume: same job, continues from the checkpoint (its next progress row is the step after it).
    seen = max(row["id"] for row in records.progress(runner.db_path, job.id))
    config_path = Path(cancelled.log_path).parent / "config.yaml"
    config_path.write_text(config_path.read_text().replace("max_steps: 200", f"max_steps: {stopped_at + 3}"))
    resumed = runner.resume(job.id)
    assert resumed.status in ("queued", "running")
    assert runner.wait(job.id, timeout=30).status == "done"
    after = records.progress(runner.db_path, job.id, after_id=seen)
    assert [row["step"] for row in after] == [stopped_at + 1, stopped_at + 2, stopped_at + 3]
    assert "resume=True" in runner.log_tail(job.id)


def test_cancel_a_queued_job_and_refuse_to_cancel_a_finished_one(runner):
    first = runner.submit(config("first", steps=30))
    queued = runner.submit(config("queued", steps=2))
    assert runner.cancel(queued.id).status == "cancelled"
    runner.cancel(first.id)
    runner.wait(first.id)
    with pytest.raises(JobError, match="only a queued or running job"):
        runner.cancel(first.id)
    with pytest.raises(JobError, match="only a cancelled or failed job"):
        runner.resume(runner.submit(config(steps=1)).id)


def test_a_job_that_ignores_sigterm_is_killed_after_the_grace_period(settings):
    runner = JobRunner(settings, entry=FAKE, poll_s=0.1, cancel_grace_s=1.0)
    try:
        job = runner.submit(config("stubborn", steps=500))
        wait_for(lambda: (runner.get(job.id).step or 0) >= 1, what="a step")
        runner.cancel(job.id)
        assert runner.wait(job.id, timeout=10).status == "cancelled"
    finally:
        runner.close()


def test_an_exception_inside_the_job_marks_it_failed_with_the_error(runner):
    job = runner.submit(config("crash", steps=5))
    failed = runner.wait(job.id)
    assert failed.status == "failed"
    assert "exited with code 1" in failed.error
    assert "RuntimeError: boom inside the job" in failed.error
    # The runner keeps working after a failed job.
    assert runner.wait(runner.submit(config(steps=1)).id).status == "done"


def test_a_new_runner_reattaches_to_a_running_job(settings):
    first = JobRunner(settings, entry=FAKE, poll_s=0.1)
    job = first.submit(config("survivor", steps=15))
    wait_for(lambda: (first.get(job.id).step or 0) >= 1, what="a step")
    first.close()  # the app stops; the job keeps running
    second = JobRunner(settings, entry=FAKE, poll_s=0.1)
    try:
        assert second.running() == [job.id]
        assert second.wait(job.id, timeout=30).status == "done"
        assert second.running() == []
    finally:
        second.close()


def test_a_running_job_whose_process_died_is_marked_failed_on_restart(settings):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    job = records.create_job(settings.db_path, config("orphan"), status="running")
    records.update_job(settings.db_path, job.id, pid=gone.pid, started_at=records.now())
    runner = JobRunner(settings, entry=FAKE, start=False)
    failed = runner.get(job.id)
    assert failed.status == "failed"
    assert "training process died" in failed.error
    assert "Resume" in failed.error


def test_submit_checks_the_config_the_base_model_and_the_parent_version(runner, settings, tmp_path):
    with pytest.raises(TrainConfigError, match="learning_rate"):
        runner.submit(config(learning_rate=5))
    with pytest.raises(JobError, match="Unknown model 'no-such-model'"):
        runner.submit(config(base_model="no-such-model"))
    with pytest.raises(JobError, match="encoder"):
        runner.submit(config(task="ner"))
    with pytest.raises(JobError, match="causal language model"):
        runner.submit(config(base_model="all-minilm-l6-v2"))
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{}")
    other = registry.register(settings.db_path, name="gem", base_model="gemma-3-270m", kind="adapter", path=folder)
    with pytest.raises(JobError, match="trained on 'gemma-3-270m'"):
        runner.submit(config(parent_version=other.label))
    with pytest.raises(JobError, match="No trained version"):
        runner.submit(config(parent_version="smollm2-135m-instruct + gone v9"))
    with pytest.raises(JobError, match="is a trained version"):
        runner.submit(config(base_model=other.label))
    assert runner.jobs() == []  # nothing was queued


def test_tail_reads_the_last_lines_and_the_last_state_of_a_progress_bar(tmp_path):
    path = tmp_path / "log"
    path.write_text("".join(f"line {i}\n" for i in range(100)) + "10%\r50%\r100%\n")
    assert tail(path, 3) == "line 98\nline 99\n100%"
    assert tail(tmp_path / "missing") == ""
    big = tmp_path / "big"
    big.write_text("x" * 100_000 + "\nend\n")
    assert tail(big, 5, max_bytes=1000) == "end"


APP_SIDE = """
import json, sys, time
from pathlib import Path
from llmplay.settings import Settings
from llmplay.training.jobs import JobRunner

def rss_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

settings = Settings(data_dir=Path(sys.argv[1]))
runner = JobRunner(settings, entry=("-m", "tests.training.fake_entry"), poll_s=0.05)
config = {"name": "mem", "base_model": "smollm2-135m-instruct", "max_steps": 25,
          "data": {"source": "rows", "rows": [{"prompt": "a", "completion": "b"}]}}
job = runner.submit(config)
while (runner.get(job.id).step or 0) < 3:
    time.sleep(0.05)
before = rss_mb()
runner.wait(job.id, timeout=60)
print(json.dumps({"torch": "torch" in sys.modules, "before": before, "after": rss_mb(),
                  "status": runner.get(job.id).status}))
"""


def test_the_app_side_never_imports_torch_and_does_not_grow_while_a_job_runs(settings):
    done = subprocess.run(
        [sys.executable, "-c", APP_SIDE, str(settings.data_dir)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == "done"
    assert result["torch"] is False
    assert result["after"] - result["before"] < 5, result  # MB: polling SQLite and the process holds nothing
