"""What the job queue keeps off the disk (issue 20, defect 7) and the files it reads (defect 1): a cap on queued
jobs, data files only from uploads, and the kept uploads that no job refers to swept."""

from __future__ import annotations

import os
import time

import pytest

from llmplay.training import data_files
from llmplay.training.jobs import JobError, JobRunner
from tests.training.test_jobs import config

FAKE = ("-m", "tests.training.fake_entry")


def file_config(path) -> dict:
    return config("from-file") | {"data": {"source": "file", "file": str(path)}}


@pytest.fixture()
def idle_runner(settings):
    """A runner that starts nothing: every submitted job stays queued."""
    settings = settings.with_(training_queue_max=2)
    r = JobRunner(settings, entry=FAKE, poll_s=0.1, slots=1, start=False)
    r.poll = lambda: None  # no job leaves the queue
    yield r
    r.close()


def test_a_full_queue_refuses_another_job_with_a_message(idle_runner):
    idle_runner.submit(config("one"))
    idle_runner.submit(config("two"))
    with pytest.raises(JobError, match=r"2 training jobs are queued .* LLMPLAY_TRAINING_QUEUE_MAX"):
        idle_runner.submit(config("three"))
    assert [j.name for j in idle_runner.jobs()] == ["two", "one"]


def test_a_job_reads_files_only_from_uploads(idle_runner, settings):
    with pytest.raises(JobError, match="is not an upload"):
        idle_runner.submit(file_config(settings.db_path))
    with pytest.raises(JobError, match="is not an upload"):
        idle_runner.submit(file_config("/etc/passwd"))
    assert idle_runner.jobs() == []


def test_kept_uploads_no_job_refers_to_are_swept(idle_runner, settings, tmp_path):
    upload = tmp_path / "rows.jsonl"
    upload.write_text('{"prompt": "2+2=", "completion": "4"}\n')
    used = data_files.keep_upload(settings, upload)
    assert data_files.keep_upload(settings, upload) == used  # the same content is kept once
    idle_runner.submit(file_config(used))
    unused = data_files.uploads_dir(settings) / "0123456789abcdef-old.jsonl"
    unused.write_text("{}\n")
    fresh = data_files.uploads_dir(settings) / "fedcba9876543210-new.jsonl"
    fresh.write_text("{}\n")  # young: may belong to a job being submitted right now
    old = time.time() - 2 * data_files.UNUSED_MIN_AGE_S
    for path in (used, unused):
        os.utime(path, (old, old))
    assert idle_runner.sweep_uploads() == 1
    assert used.exists() and fresh.exists() and not unused.exists()


def test_the_limits_are_settings_with_environment_overrides(monkeypatch):
    from llmplay.errors import LlmplayError
    from llmplay.settings import Settings

    monkeypatch.setenv("LLMPLAY_TRAINING_QUEUE_MAX", "3")
    monkeypatch.setenv("LLMPLAY_UPLOAD_QUOTA_BYTES", "1000")
    monkeypatch.setenv("LLMPLAY_UPLOAD_QUOTA_FILES", "4")
    settings = Settings.from_env()
    assert (settings.training_queue_max, settings.upload_quota_bytes, settings.upload_quota_files) == (3, 1000, 4)
    monkeypatch.setenv("LLMPLAY_TRAINING_QUEUE_MAX", "0")
    with pytest.raises(LlmplayError, match="training_queue_max must be positive"):
        Settings.from_env()


@pytest.mark.parametrize(
    ("task", "model", "message"),
    [
        (
            "sft",
            "all-minilm-l6-v2",
            r"Task 'sft' trains a causal language model; .* is an encoder model",
        ),
        ("classification", "smollm2-135m-instruct", r"Task 'classification' trains an encoder .* is a chat model"),
    ],
)
def test_a_task_refuses_a_model_of_the_other_family_before_queueing(idle_runner, task, model, message):
    """The task decides which models it trains (Task.check_model): the runner asks it, and nothing queues."""
    with pytest.raises(JobError, match=message):
        idle_runner.submit(config("wrong-family") | {"task": task, "base_model": model, "method": "lora"})
    assert idle_runner.jobs() == []
