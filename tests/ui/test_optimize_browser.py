"""The Optimize tab in a real browser on the real bundled SmolLM2: a search is started from the form, its candidates
appear with scores while it runs, a reloaded page follows it again, and at the end the page shows the held-out
test report and the diff, and saves the winner as a new version whose message records the search.

The search is small (two candidates: the start template, generating, and the same answering by likelihood; 10 dev
rows, 30 test rows) on invented rows (tests/optimize/rows.py)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from llmplay.datasets import ColumnMapping, save_dataset
from llmplay.templates.library import TemplateLibrary
from tests.conftest import CHAT_MODEL
from tests.optimize.rows import sentiment_rows
from tests.ui.browser import NEEDS_BROWSER, open_page

pytestmark = NEEDS_BROWSER
START = "opt-browser-start"
SHOTS = os.environ.get("LLMPLAY_SCREENSHOTS")  # a folder: full-page screenshots while running and at the end


def shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


@pytest.fixture()
def page():
    yield from open_page(1400, 1400)


def pick(page, box, option: str) -> None:
    box.click()
    box.fill(option)
    page.get_by_role("option", name=option, exact=True).click()


def test_a_search_from_the_form_is_followed_after_a_reload_and_its_winner_saved(page, ui_url, engine, ui_prompts_dir):
    from playwright.sync_api import expect

    settings = engine.settings
    frame = pd.DataFrame(sentiment_rows(60), dtype=object)
    save_dataset(settings, "opt-browser", frame, ColumnMapping({"text": "text"}, "label"))
    library = TemplateLibrary.from_settings(settings, ui_prompts_dir)
    # Asked for words that are not its labels, the start's generated replies are never a label, while ranking the
    # labels always gives one: the likelihood candidate wins, and there is a version to save.
    ask = "Is this news good, bad or so-so for the company? Answer with one word: good, bad or so-so."
    body = ask + "\nSentence: {{ text }}"
    start = replace(library.load("financial-sentiment"), name=START, examples=(), body=body)
    library.save(start, message="asks for words that are not its labels")

    page.goto(ui_url + "?tab=optimize")
    pick(page, page.locator("#optimize-template input"), START)
    pick(page, page.locator("#optimize-dataset input"), "opt-browser")
    pick(page, page.locator("#optimize-model input"), CHAT_MODEL)
    page.locator("#optimize-pool input").fill("0")
    page.locator("#optimize-dev input").fill("10")
    page.locator("#optimize-test input").fill("30")
    for box in ("#optimize-few-shot", "#optimize-retrieved", "#optimize-edits"):
        page.locator(f"{box} input").uncheck()
    page.locator("#optimize-modes").get_by_label("generate").uncheck()
    page.locator("#optimize-start").click()
    status = page.locator("#optimize-status")
    expect(status).to_contain_text("started", timeout=60_000)
    search = int(status.inner_text().split("#")[1].split()[0])

    # Scores appear while it runs (a dev score is "0.xxx" or "1.0"), then a reloaded page follows the same search.
    table = page.locator("#optimize-candidates")
    expect(table).to_contain_text("start template", timeout=120_000)
    shot(page, "optimize-running")
    page.reload()
    expect(page.locator("#optimize-status")).to_contain_text(f"Search #{search}", timeout=60_000)
    expect(page.locator("#optimize-status")).to_contain_text("done", timeout=300_000)
    result = page.locator("#optimize-result")
    expect(result).to_contain_text("Test (30 held-out rows", timeout=30_000)
    expect(result).to_contain_text("paired bootstrap")
    expect(page.locator("#optimize-candidates")).to_contain_text("winner")

    shot(page, "optimize-done")
    view = engine_search(ui_url, search)
    assert view["result"]["winner"] == 1 and view["status"] == "done"
    # After the reload the form shows the search's settings, not the defaults.
    expect(page.locator("#optimize-dataset input")).to_have_value("opt-browser")
    expect(page.locator("#optimize-test input")).to_have_value("30")
    expect(page.locator("#optimize-diff")).to_contain_text("mode: likelihood")
    page.locator("#optimize-save").click()
    expect(page.locator("#optimize-saved")).to_contain_text(f"Saved {START} v2", timeout=30_000)
    shot(page, "optimize-saved")
    saved = library.current_version(START)
    assert saved.number == 2 and f"optimized from {START} v1" in saved.message


def engine_search(url: str, search: int) -> dict:
    """The search as the API reports it (/optimize_progress), through a real Gradio client."""
    from gradio_client import Client

    return Client(url, verbose=False).predict(search, api_name="/optimize_progress")
