"""/health's scheduler report: the loop thread runs, records its last check, and a stopped one is unhealthy."""

from __future__ import annotations

import time
from types import SimpleNamespace

from llmplay.api.rest import health
from llmplay.loop.scheduler import Scheduler
from llmplay.settings import Settings
from llmplay.store import connect


def test_a_running_scheduler_is_healthy_and_a_stopped_one_is_not(tmp_path):
    settings = Settings(data_dir=tmp_path, cache_dir=tmp_path / "cache")
    with connect(settings.db_path):
        pass  # the schema, as the app creates it at start
    # The scheduler reads only engine.settings until a line is due (none here): no model is needed.
    scheduler = Scheduler(SimpleNamespace(settings=settings), jobs=None, runner=None, check_s=0.05)
    try:
        deadline = time.monotonic() + 10
        while scheduler.last_check_at is None and time.monotonic() < deadline:
            time.sleep(0.02)
        ok, report = health(settings, {"scheduler": scheduler.health})
        assert ok and report["status"] == "ok", report
        assert report["scheduler"]["running"] and report["scheduler"]["last_check_at"], report
    finally:
        scheduler.close()
    ok, report = health(settings, {"scheduler": scheduler.health})
    assert not ok and report["status"] == "unhealthy"
    assert report["scheduler"] | {"last_check_at": None} == {
        "ok": False, "enabled": True, "running": False, "check_s": 0.05, "last_check_at": None, "last_error": None,
    }  # fmt: skip
    off = Scheduler(SimpleNamespace(settings=settings), jobs=None, runner=None, check_s=0, start=False)
    assert health(settings, {"scheduler": off.health})[0], "a scheduler switched off (check_s 0) is not a fault"


def test_a_probe_that_raises_makes_the_app_unhealthy_with_its_error(tmp_path):
    settings = Settings(data_dir=tmp_path, cache_dir=tmp_path / "cache")
    with connect(settings.db_path):
        pass

    def broken() -> dict:
        raise RuntimeError("no thread")

    ok, report = health(settings, {"scheduler": broken})
    assert not ok and report["scheduler"] == {"ok": False, "error": "RuntimeError: no thread"}
