"""The background worker the loop scheduler and the job runner share: steps, wake, errors, stop."""

from __future__ import annotations

import threading

from llmplay.worker import Worker


def test_a_worker_steps_records_errors_and_stops():
    outcomes = iter([None, RuntimeError("database is locked"), None])

    def step():
        outcome = next(outcomes, None)
        if outcome is not None:
            raise outcome

    worker = Worker("test-worker", step, interval_s=3600)  # only wake() makes it step
    worker.start()
    try:
        assert worker.running and worker.health()["last_check_at"] is None
        worker.wake()
        assert worker.wait_steps(1, timeout=30)
        assert worker.last_check_at and worker.last_error is None
        worker.wake()
        assert worker.wait_steps(1, timeout=30)
        assert worker.health() | {"last_check_at": None} == {
            "running": True, "last_check_at": None, "last_error": "RuntimeError: database is locked",
        }  # fmt: skip
        worker.wake()
        assert worker.wait_steps(1, timeout=30)
        assert worker.last_error is None, "a step that succeeds clears the last error"
    finally:
        worker.stop(timeout=30)
    assert not worker.running
    assert "test-worker" not in [t.name for t in threading.enumerate()]


def test_stop_waits_for_the_step_in_progress():
    started, release, done = threading.Event(), threading.Event(), threading.Event()

    def step():
        started.set()
        release.wait(30)
        done.set()

    worker = Worker("test-slow", step, interval_s=0.01)
    worker.start()
    assert started.wait(30)
    threading.Timer(0.2, release.set).start()
    worker.stop(timeout=30)
    assert done.is_set() and not worker.running
