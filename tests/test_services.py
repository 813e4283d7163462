"""The app's services object: what it builds it also stops (a test session launches dozens of apps; each left a
job-runner watcher thread polling SQLite until the process ended)."""

from __future__ import annotations

from llmplay.services import Services
from llmplay.training.jobs import JobRunner


def test_close_stops_the_job_watcher_it_built_and_not_one_it_was_handed(isolated_engine):
    services = Services.build(isolated_engine, check_s=0)
    assert services.jobs.worker.running
    services.close()
    assert not services.jobs.worker.running

    shared = JobRunner(isolated_engine.settings, catalog=isolated_engine.catalog)
    try:
        borrowed = Services.build(isolated_engine, jobs=shared, check_s=0)
        borrowed.close()
        assert shared.worker.running  # its owner closes it
    finally:
        shared.close()
    assert not shared.worker.running
