"""Real training from the full app: a tiny LoRA job on SmolLM2 started from the Train tab's API registers a
version that every model picker offers by label at once, the Playground generates with it, and it can be
zipped and deleted; in Chromium, a job started from the form moves the progress bar and the loss chart, and a
reloaded page re-attaches to it.

The jobs are tiny (a few steps, eight rows, 64 tokens) and run in a child process that loads SmolLM2 itself.
"""

from __future__ import annotations

import html
import importlib.util
import time
import zipfile

import pytest
import yaml

from llmplay.models import registry
from llmplay.training import records
from llmplay.ui.tabs.train.tab import FORM, FORM_DEFAULTS
from tests.conftest import CHAT_MODEL, PARIS_QUESTION
from tests.ui.browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = [
    pytest.mark.slow,
]

ROWS = [{"prompt": f"Is '{w}' good or bad? One word.", "completion": label} for w, label in
        [("great", "good"), ("awful", "bad"), ("lovely", "good"), ("terrible", "bad"), ("fine", "good"),
         ("horrid", "bad"), ("superb", "good"), ("dreadful", "bad")]]  # fmt: skip


def tiny_yaml(name: str, steps: int) -> str:
    config = {
        "name": name, "base_model": CHAT_MODEL, "lora_r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"],
        "max_steps": steps, "batch_size": 2, "max_length": 64, "logging_steps": 1, "learning_rate": 1e-3,
        "data": {"source": "rows", "rows": ROWS, "validation_fraction": 0.25},
    }  # fmt: skip
    return yaml.safe_dump(config, sort_keys=False)


def form_args() -> list:
    return [(FORM_DEFAULTS | {"base_model": CHAT_MODEL})[k] for k in FORM]


def wait_job(client, job_id: int, status: str, timeout: float = 900) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        progress = client.predict(job_id, api_name="/train_refresh")[0]
        if f"data-status='{status}'" in progress:
            return progress
        assert "data-status='failed'" not in progress, html.unescape(progress)
        time.sleep(1)
    raise AssertionError(f"job {job_id} is not {status} after {timeout} s: {progress}")


def test_a_finished_job_is_offered_by_name_everywhere_and_generates(client, engine):
    message, job, _ = client.predict(True, tiny_yaml("ui-real", 6), *form_args(), api_name="/train_start")
    job_id = job["value"] if isinstance(job, dict) else job
    assert f"Job #{job_id}" in message, html.unescape(message)
    wait_job(client, job_id, "done")
    version = registry.get_version(engine.settings.db_path, records.get_job(engine.settings.db_path, job_id).version_id)
    label = version.label
    assert label == f"{CHAT_MODEL} + ui-real v{version.version}"

    # Every model picker (Playground, Templates, Evaluate, Compare, Arena) offers it by label at once.
    pickers = client.predict(api_name="/model_choices")
    assert len(pickers) >= 5
    assert all(label in [value for _, value in p["choices"]] for p in pickers)

    # The Playground generates with it: the base model plus the version's adapter.
    history, status = client.predict(
        message=PARIS_QUESTION, history=[], model=label, max_new_tokens=12, temperature=0, api_name="/chat"
    )
    assert history[-1]["role"] == "assistant" and history[-1]["content"], status
    spec = engine.catalog.get(label)
    assert engine.models.get(spec).adapter == version.path
    _, base_scores = engine.choose(CHAT_MODEL, "Is 'great' good or bad? One word.", ["good", "bad"])
    _, tuned_scores = engine.choose(label, "Is 'great' good or bad? One word.", ["good", "bad"])
    assert [round(s.logprob, 3) for s in base_scores] != [round(s.logprob, 3) for s in tuned_scores]

    # Evaluate it against its base: an evaluation run with both columns and the paired comparison.
    started, run, _ = client.predict(label, "builtin:financial-sentiment", "financial-sentiment", 6,
                                     api_name="/version_evaluate")  # fmt: skip
    run_id = run["value"] if isinstance(run, dict) else run
    assert f"Evaluation run #{run_id} started" in started, html.unescape(started)
    deadline = time.monotonic() + 600
    while (report := client.predict(run_id, api_name="/version_eval_poll")).startswith("⏳"):
        assert time.monotonic() < deadline, report
        time.sleep(1)
    assert f"| {label}" in report or label in report, report
    assert "version − base" in report and "| accuracy |" in report, report

    # Download it as a zip, then delete it: gone from every picker.
    path, note = client.predict(label, api_name="/version_zip")
    with zipfile.ZipFile(path) as archive:
        assert "adapter_config.json" in archive.namelist()
    deleted, _, _ = client.predict(label, api_name="/version_delete")
    assert "Deleted" in deleted
    assert all(label not in [value for _, value in p["choices"]] for p in client.predict(api_name="/model_choices"))


@pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium is not installed")
@pytest.mark.skipif(importlib.util.find_spec("playwright") is None, reason="playwright is not installed")
def test_browser_start_watch_progress_and_reattach_after_reload(ui_url, engine):
    from playwright.sync_api import expect, sync_playwright

    def open_train(page):
        page.goto(ui_url)
        page.get_by_role("tab", name="Train").click()
        return page.locator("#train-progress-box")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        open_train(page)
        page.get_by_text("YAML (advanced)").click()
        page.get_by_label("Start from this YAML instead of the form").check()
        editor = page.locator("#train-yaml .cm-content")
        editor.click()
        editor.fill(tiny_yaml("browser-lora", 40))
        page.locator("#train-start").click()
        expect(page.locator("#train-message")).to_contain_text("Job #", timeout=60_000)

        page.locator("#train-progress-box[data-status='running']").wait_for(timeout=300_000)
        # the job id from the box whatever its status now: a fast job may be past 'running' by this line
        job_id = int(page.locator("#train-progress-box").get_attribute("data-job"))
        page.wait_for_function(
            "() => Number(document.querySelector('#train-progress-box')?.dataset.step || 0) >= 2", timeout=600_000
        )
        first_step = int(page.locator("#train-progress-box").get_attribute("data-step"))
        first_points = int(page.locator("#train-chart-box").get_attribute("data-points"))
        page.wait_for_function(
            f"() => Number(document.querySelector('#train-progress-box')?.dataset.step || 0) > {first_step}",
            timeout=300_000,
        )
        assert int(page.locator("#train-chart-box").get_attribute("data-points")) >= first_points

        page.reload()  # mid-job: the tab finds the running job again
        again = open_train(page)
        expect(again).to_have_attribute("data-job", str(job_id), timeout=60_000)
        expect(again).to_have_attribute("data-status", "running", timeout=60_000)
        reloaded_step = int(again.get_attribute("data-step"))
        page.wait_for_function(
            f"() => Number(document.querySelector('#train-progress-box')?.dataset.step || 0) > {reloaded_step}",
            timeout=300_000,
        )
        page.locator("#train-cancel").click()
        expect(page.locator("#train-progress-box")).to_have_attribute("data-status", "cancelled", timeout=120_000)
        browser.close()
    assert records.get_job(engine.settings.db_path, job_id).status == "cancelled"
