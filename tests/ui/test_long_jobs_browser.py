"""Long jobs show their life in Chromium (issue 21): a short training job's progress moves before its first step
ends (phase and seconds: starting, loading model, tokenizing, training step 1 ...) and its chart draws a training
line from the first step; a 40-cell evaluation's progress changes at least five times, cells counted as they
finish, while the results grid fills in.

Real app, real SmolLM2, real child process for training. With LLMPLAY_SCREENSHOTS=<folder> the tests also save
the screenshots of the issue's note there (Train tab with a job running and its loss curve, Evaluate progress).
"""

from __future__ import annotations

import json
import os
import random
import re
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from llmplay.datasets import ColumnMapping, save_dataset
from llmplay.training import records
from tests.conftest import CHAT_MODEL, SHARED_DATASETS
from tests.ui.browser import NEEDS_BROWSER, open_page

pytestmark = NEEDS_BROWSER

ROWS = [{"prompt": f"Is '{w}' good or bad? One word.", "completion": label} for w, label in
        [("great", "good"), ("awful", "bad"), ("lovely", "good"), ("terrible", "bad"), ("fine", "good"),
         ("horrid", "bad"), ("superb", "good"), ("dreadful", "bad")]]  # fmt: skip
SHOTS = os.environ.get("LLMPLAY_SCREENSHOTS")


@pytest.fixture()
def page():
    yield from open_page(1400, 1000)


def shot(page, name: str, *locators) -> None:
    """A screenshot of the part of the page the ``locators`` cover (for the issue's note), when asked for."""
    if not SHOTS:
        return
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
    locators[0].scroll_into_view_if_needed()
    boxes = [b for b in (loc.bounding_box() for loc in locators) if b]
    left, top = min(b["x"] for b in boxes), min(b["y"] for b in boxes)
    right, bottom = max(b["x"] + b["width"] for b in boxes), max(b["y"] + b["height"] for b in boxes)
    sx, sy = page.evaluate("() => [window.scrollX, window.scrollY]")  # boxes are in the viewport; the clip in the page
    clip = {"x": left + sx, "y": top + sy, "width": right - left, "height": bottom - top}
    page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), clip=clip, full_page=True)


def pick(page, box, option: str) -> None:
    box.click()
    box.fill(option)
    page.get_by_role("option", name=option, exact=True).click()


def scaled_job(name: str, steps: int) -> str:
    """No batch_size or logging_steps: both scale with the 6 training rows (batch 2, a loss point each step)."""
    config = {
        "name": name, "base_model": CHAT_MODEL, "lora_r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"],
        "max_steps": steps, "max_length": 64, "learning_rate": 1e-3,
        "data": {"source": "rows", "rows": ROWS, "validation_fraction": 0.25},
    }  # fmt: skip
    return yaml.safe_dump(config, sort_keys=False)


BOX = """() => {
  const box = document.querySelector('#train-progress-box');
  return box ? [box.dataset.status || '', Number(box.dataset.step || 0), box.dataset.phase || '', box.innerText,
                Number(box.dataset.job || 0)] : null;
}"""


def test_training_progress_moves_before_the_first_step_and_the_chart_draws_from_it(page, ui_url, engine):
    page.goto(ui_url)
    page.get_by_role("tab", name="Train").click()
    page.get_by_text("YAML (advanced)").click()
    page.get_by_label("Start from this YAML instead of the form").check()
    editor = page.locator("#train-yaml .cm-content")
    editor.click()
    editor.fill(scaled_job("alive-lora", 6))
    page.locator("#train-start").click()
    message = page.locator("#train-message").get_by_text("Job #")
    message.wait_for(timeout=120_000)
    job_id = int(re.search(r"Job #(\d+)", message.inner_text()).group(1))

    before_first_step, phases, last, started = set(), [], None, time.monotonic()
    deadline = started + 900
    while True:  # what the page shows until the first step has ended, read as the page updates it
        state = page.evaluate(BOX)
        if state != last:
            print(f"{time.monotonic() - started:7.1f} s", state, flush=True)  # pytest -s: how the page moved
            last = state
        if state and state[4] != job_id:  # the box may still show an earlier test's job until it follows ours
            state = None
        if state and state[0] == "running":
            status, step, phase, text, _ = state
            if step >= 1:
                break
            before_first_step.add(text)
            if phase and (not phases or phases[-1] != phase):
                phases.append(phase)
        assert state is None or state[0] in ("", "queued", "running"), state  # "": the box before it follows the job
        assert time.monotonic() < deadline, f"no step finished: {state}"
        time.sleep(0.3)
    assert len(before_first_step) >= 2, before_first_step  # it moved while no step had finished
    assert phases and set(phases) <= {"starting", "reading data", "loading model", "tokenizing",
                                      "preparing the adapter", "training"}, phases  # fmt: skip

    box = page.locator("#train-progress-box")
    page.wait_for_function(
        "() => Number(document.querySelector('#train-chart-box')?.dataset.points || 0) >= 2", timeout=900_000
    )
    if box.get_attribute("data-status") == "running":
        shot(page, "train-running", page.locator("#train-job"), page.locator("#train-progress"),
             page.locator("#train-chart"))  # fmt: skip
    page.wait_for_function(
        "() => !['running', 'queued'].includes(document.querySelector('#train-progress-box')?.dataset.status)",
        timeout=900_000,
    )
    assert box.get_attribute("data-status") == "done", box.inner_text()
    chart = page.locator("#train-chart-box")
    assert int(chart.get_attribute("data-points")) >= 6  # a loss point at every one of the 6 steps
    assert chart.locator("polyline").count() >= 1
    page.wait_for_function(  # the picker no longer says running
        "() => (document.querySelector('#train-job input')?.value || '').includes('done')", timeout=30_000
    )
    job_id = int(box.get_attribute("data-job"))
    job = records.get_job(engine.settings.db_path, job_id)
    assert job.status == "done" and job.total_steps == 6


def fpb40(settings) -> str:
    """40 Financial PhraseBank sentences as a saved dataset (skipped without the shared data)."""
    path = SHARED_DATASETS / "financial_phrasebank" / "sentences_allagree.jsonl"
    if not path.exists():
        pytest.skip(f"{path} is missing (the shared datasets are not next to this clone)")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    random.Random(21).shuffle(rows)
    frame = pd.DataFrame(rows[:40], columns=["text", "label"], dtype=object)
    save_dataset(settings, "fpb40-live", frame, ColumnMapping({"text": "text"}, "label"), source="fpb")
    return "fpb40-live"


def test_a_40_cell_evaluation_counts_cells_as_they_finish(page, ui_url, engine):
    dataset = fpb40(engine.settings)
    page.goto(ui_url)
    page.get_by_role("tab", name="Evaluate").click()
    page.get_by_role("tab", name="Run").click()
    pick(page, page.locator("#eval-dataset input"), dataset)
    pick(page, page.locator("#eval-templates input"), "financial-sentiment")
    pick(page, page.locator("#eval-mode input"), "generate")
    page.locator("#eval-max-new-tokens input").fill("4")
    page.locator("#eval-seed textarea, #eval-seed input").first.fill(str(random.randrange(10**9)))  # no cache
    page.locator("#eval-start").click()
    page.locator("#eval-run-status").get_by_text("Started run").wait_for(timeout=120_000)

    seen, shown = [], False
    deadline = time.monotonic() + 1200
    while True:
        done = page.evaluate(
            "() => document.querySelector('#eval-bar .eval-progress-count')?.dataset.done ?? null"
        )  # fmt: skip
        text = page.locator("#eval-progress").inner_text()
        if done is not None and (not seen or seen[-1] != int(done)):
            seen.append(int(done))
        if not shown and SHOTS and done is not None and 10 <= int(done) < 40:
            shown = True
            shot(page, "evaluate-progress", page.locator("#eval-bar").locator("xpath=../.."))
        if "✅" in text or "⚠️" in text or "⏹️" in text:
            break
        assert time.monotonic() < deadline, seen
        time.sleep(0.2)
    assert "✅" in text, text
    assert seen[-1] == 40 or "40/40" in text, (seen, text)
    if seen[-1] != 40:  # the finished bar may replace the live counter in the same update: 40 shows as "40/40"
        seen.append(40)
    # cells counted as they finish: about five batches give counts below 40 before the end. The page polls
    # once a second, so on a loaded machine a poll can come after two batches (CI saw [9, 17, 32, 40]) and the
    # 0 can be gone before the first poll: two counts between 0 and 40 are what shows the bar is live.
    assert len([d for d in seen if 0 < d < 40]) >= 2, seen
    assert seen == sorted(seen)
