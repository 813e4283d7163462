"""Prompt searches as the app's background jobs (llmplay/optimize/jobs.py), on the real bundled SmolLM2 and a real
SQLite file: a search runs on its own thread and is watched live, one model runs one search at a time, bad input
starts nothing, cancel stops it without a test report, a finished search is read back (and its winner saved) by
a new jobs object, as after a reload or a restart, and a search whose process died shows as interrupted.

The start template is the library's financial-sentiment without its six examples (short prompts: fast enough for a
test) and the candidates answer by likelihood; the rows are invented (tests/optimize/rows.py)."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pandas as pd
import pytest

from llmplay.datasets import ColumnMapping, save_dataset
from llmplay.errors import InvalidRequestError
from llmplay.optimize.config import OptimizeConfig
from llmplay.optimize.jobs import TABLE, OptimizeJobs
from llmplay.store import connect
from llmplay.templates.library import TemplateLibrary
from tests.conftest import CHAT_MODEL, ROOT
from tests.optimize.rows import sentiment_rows

CONFIG = {
    "template": "sentiment-zero-shot@v1",
    "dataset": "invented",
    "model": CHAT_MODEL,
    "splits": {"pool": 0, "dev": 10, "test": 30},
    "budget": {"minutes": 10},
    "params": {"max_new_tokens": 3},
    "search": {"few_shot": False, "instruction_edits": False, "answer_modes": ["likelihood"], "eta": 2},
}  # two candidates: the start (generate) and the start answering by likelihood
MORE = {**CONFIG, "search": {**CONFIG["search"], "instruction_edits": True}}  # six: time to cancel in


@pytest.fixture()
def jobs(isolated_engine):
    settings = isolated_engine.settings
    save_dataset(
        settings, "invented", pd.DataFrame(sentiment_rows(60), dtype=object), ColumnMapping({"text": "text"}, "label")
    )
    library = TemplateLibrary.from_settings(settings, ROOT / "prompts")
    start = replace(library.load("financial-sentiment"), name="sentiment-zero-shot", examples=())
    library.save(start, message="financial-sentiment without its examples")
    made = OptimizeJobs(isolated_engine, library)
    yield made
    made.close()


def _until(check, timeout=180.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_a_search_runs_in_the_background_is_read_back_after_a_reload_and_its_winner_saved(jobs):
    search_id = jobs.start(OptimizeConfig.from_dict(CONFIG), user="ada")
    live = jobs.view(search_id)
    assert live.running and live.user == "ada" and jobs.active() == [search_id]
    assert "sentiment-zero-shot" in live.start_yaml and live.result is None
    # One model, one search at a time: a second one is refused while the first runs.
    with pytest.raises(InvalidRequestError, match="already running"):
        jobs.start(OptimizeConfig.from_dict(CONFIG))
    # Watched live: candidates appear with scores while it runs, and the calls planned cover the test report.
    scored = _until(
        lambda: (v := jobs.view(search_id)).running and any(c["score"] is not None for c in v.candidates) and v
    )
    assert scored.calls_planned >= 2 * 30 and 0 < scored.calls_done <= scored.calls_planned
    assert any("candidates" in line for line in scored.log)
    done = jobs.wait(search_id, timeout=300)
    assert done.status == "done", done.error
    assert jobs.active() == [] and done.fraction == 1.0
    test = done.result["test"]
    assert test["gain"]["n"] == 30 and test["gain"]["low"] <= test["gain"]["score"] <= test["gain"]["high"]
    winner = next(c for c in done.candidates if c["status"] == "winner")
    assert winner["id"] == done.result["winner"] and winner["dev_rows"] == 10

    # A new jobs object over the same database (a reloaded page's app, or a restarted one) reads the same search.
    again = OptimizeJobs(jobs.engine, jobs.library)
    seen = again.view(search_id)
    assert (seen.status, seen.candidates, seen.result) == ("done", done.candidates, done.result)
    assert [s["id"] for s in again.searches()] == [search_id]
    if done.result["winner"] == 0:
        with pytest.raises(InvalidRequestError, match="no winner"):
            again.save(search_id)
        return
    before = jobs.library.current_version("sentiment-zero-shot").number
    saved = again.save(search_id, author="ada")
    assert saved.version.number == before + 1 and saved.version.author == "ada"
    assert "optimized from sentiment-zero-shot v1" in saved.version.message
    assert f"gain {test['gain']['score']:+.3f}" in saved.version.message
    assert again.view(search_id).saved_version == saved.version.number
    with pytest.raises(InvalidRequestError, match="already saved"):
        again.save(search_id)


def test_cancel_stops_a_search_without_a_test_report(jobs):
    search_id = jobs.start(OptimizeConfig.from_dict(MORE))
    _until(lambda: any(c["score"] is not None for c in jobs.view(search_id).candidates))
    assert jobs.cancel(search_id)
    stopped = jobs.wait(search_id, timeout=120)
    assert stopped.status == "cancelled" and stopped.result["test"] is None
    assert stopped.winner_yaml == ""
    with pytest.raises(InvalidRequestError, match="no winner"):
        jobs.save(search_id)
    assert not jobs.cancel(search_id)  # not running any more


@pytest.mark.parametrize(
    "change, says",
    [
        ({"dataset": "no-such-dataset"}, "no-such-dataset"),
        ({"splits": {"pool": 0, "dev": 10, "test": 55}}, "splits need"),
        ({"model": "no-such-model"}, "no-such-model"),
    ],
)
def test_bad_input_starts_nothing(jobs, change, says):
    with pytest.raises(InvalidRequestError, match=says):
        jobs.start(OptimizeConfig.from_dict({**CONFIG, **change}))
    assert jobs.active() == [] and jobs.searches() == []


def test_a_search_left_running_by_a_dead_process_shows_as_interrupted(jobs):
    with connect(jobs.settings.db_path) as db:
        search_id = db[TABLE].insert(
            {"created_at": "2026-12-01T10:00:00+00:00", "pid": 2**22 + 7, "status": "running", "model": CHAT_MODEL,
             "template": "sentiment-zero-shot", "dataset": "invented", "config": json.dumps(CONFIG)}
        ).last_pk  # fmt: skip
    view = OptimizeJobs(jobs.engine, jobs.library).view(search_id)
    assert view.status == "interrupted" and "start it again" in view.error
    with pytest.raises(InvalidRequestError, match="No prompt search #999"):
        jobs.view(999)
