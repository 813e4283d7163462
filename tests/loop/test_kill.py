"""Kill the process running an update (kill -9) mid-training: on restart the update is failed, the active version
is unchanged, and no feedback row is lost or marked consumed by the dead update."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from llmplay.loop import data as loop_data
from llmplay.loop import lines
from llmplay.loop.scheduler import status
from llmplay.loop.update import list_updates
from llmplay.settings import Settings
from llmplay.store import connect
from tests.loop.helpers import add_accepted

CHILD = Path(__file__).with_name("update_child.py")
REACH_S = 900  # generous: the child imports llmplay and starts a job process, slow on a busy machine


def _training_job(settings) -> tuple[int | None, int | None]:
    """The (pid, step) of the newest training job, once the update is in its training stage."""
    with connect(settings.db_path) as db:
        updates = list_updates(db, "fpb")
        job = db.execute("select pid, step from training_jobs order by id desc limit 1").fetchone()
    if updates and updates[0].stage == "training" and job:
        return job[0], job[1]
    return None, None


def test_a_killed_update_is_failed_on_restart_and_nothing_is_consumed(tmp_path):
    settings = Settings(data_dir=tmp_path)
    with connect(settings.db_path) as db:
        lines.create_line(db, "fpb", "smollm2-135m-instruct", "financial-sentiment", settings={"heldout_fraction": 0.0})
        ids = add_accepted(db, 6)
    env = os.environ | {"LLMPLAY_DATA_DIR": str(tmp_path)}
    child = subprocess.Popen([sys.executable, str(CHILD), str(tmp_path), "fpb"], env=env)
    try:
        # Wait for the event (the job's first step), not for a clock: the fake job steps until it is killed, so
        # the only ways out are that step, the update process ending (a real failure), or a very long wait.
        deadline = time.monotonic() + REACH_S
        while not all(_training_job(settings)):
            assert child.poll() is None, "the update process ended before it was killed"
            assert time.monotonic() < deadline, f"the update never reached its training job in {REACH_S} s"
            time.sleep(0.2)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
        job_pid, _ = _training_job(settings)
        if job_pid:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(job_pid, signal.SIGKILL)  # the job is its own process group
    # "Restart": the next status check (the scheduler's or `llmplay loop status`) finds the dead update.
    [line_status] = status(settings.db_path)
    with connect(settings.db_path) as db:
        [update] = list_updates(db, "fpb")
        assert update.status == "failed" and "died during training" in update.error
        assert lines.get_line(db, "fpb").active_version_id is None
        assert db.execute("select count(*) from feedback_consumption").fetchone()[0] == 0
        again = loop_data.gather(db, lines.get_line(db, "fpb"))
        assert sorted(a.item.id for a in again.new) == sorted(ids)  # every row is still waiting to be trained
        assert db.execute("select count(*) from feedback_responses where status = 'submitted'").fetchone()[0] == 6
    assert line_status.new_rows == 6
