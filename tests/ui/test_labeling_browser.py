"""The Labeling tab in a real browser: a labeler opens a queue, answers three items with the keyboard
shortcuts (a digit picks and submits a label, Ctrl+Enter submits a correction, Enter submits the picked
answer) and sees the progress count and their history change; a reviewer adjudicates a disagreement and
downloads an export.

Needs Debian's chromium and playwright (never `playwright install`); skipped otherwise.
"""

from __future__ import annotations

import re

import pytest

from llmplay.feedback import store as fb
from llmplay.store import connect
from tests.ui.browser import NEEDS_BROWSER, open_page

pytestmark = NEEDS_BROWSER


@pytest.fixture(scope="module")
def page():
    yield from open_page()


def make_queue(engine, name: str, task: str, outputs: list[str], **settings) -> None:
    with connect(engine.settings.db_path) as db:
        fb.create_queue(db, name, task, user="admin", **settings)
        fb.add_items(
            db,
            name,
            [{"source": "test", "prompt": [{"role": "user", "content": f"Review {o}"}], "output": o} for o in outputs],
        )


def history_grid(page):
    """The history table's grid: its aria-rowcount is the header plus one row per answer (rows are virtual)."""
    return page.locator("#labeling-history [role=grid]")


def open_queue(page, ui_url: str, labeler: str, queue: str, done: str = "0 of 3 done") -> None:
    from playwright.sync_api import expect

    page.goto(ui_url)
    page.get_by_role("tab", name="Labeling").click()
    page.locator("#labeling-name textarea, #labeling-name input").first.fill(labeler)
    page.locator("#labeling-queue input").click()
    page.get_by_role("option", name=queue, exact=True).click()
    expect(page.locator("#labeling-progress")).to_contain_text(done, timeout=20_000)


def test_three_labels_with_digit_keys(page, ui_url, engine):
    from playwright.sync_api import expect

    make_queue(engine, "browser-labels", "label", ["alpha", "beta", "gamma"], labels=["good", "bad"])
    open_queue(page, ui_url, "kim", "browser-labels")
    expect(page.locator("#labeling-guidelines")).to_be_visible()
    expect(page.locator("#labeling-choice-0")).to_contain_text("good")
    page.locator("#labeling-item").click()  # focus out of the text fields: plain keys are shortcuts there
    for done, key in enumerate(["1", "2", "1"], 1):
        page.keyboard.press(key)
        expect(page.locator("#labeling-progress")).to_contain_text(f"{done} of 3 done", timeout=20_000)
        expect(history_grid(page)).to_have_attribute("aria-rowcount", str(done + 1), timeout=10_000)
    expect(page.locator("#labeling-item")).to_contain_text("Nothing left for you")
    history = page.locator("#labeling-history").inner_text()
    assert history.count("submitted") == 3 and "bad" in history
    with connect(engine.settings.db_path) as db:
        values = sorted((r.item_id, r.value) for r in fb.list_responses(db, queue="browser-labels", labeler="kim"))
    assert [v for _, v in values] == ["good", "bad", "good"]


def test_corrections_with_ctrl_enter_and_history_with_arrows(page, ui_url, engine):
    from playwright.sync_api import expect

    make_queue(engine, "browser-fixes", "correction", ["Pariss", "Berln", "Rom"])
    open_queue(page, ui_url, "lee", "browser-fixes")
    editor = page.locator("#labeling-correction textarea")
    expect(editor).to_have_value("Pariss")  # pre-filled with the output
    for done, fixed in enumerate(["Paris", "Berlin", "Rome"], 1):
        editor.fill(fixed)
        editor.press("Control+Enter")
        expect(page.locator("#labeling-progress")).to_contain_text(f"{done} of 3 done", timeout=20_000)
    expect(history_grid(page)).to_have_attribute("aria-rowcount", "4")
    page.locator("#labeling-item").click()
    page.keyboard.press("ArrowLeft")  # the newest answer of the history opens for editing
    expect(page.locator("#labeling-message")).to_contain_text("Editing", timeout=10_000)
    expect(editor).to_have_value("Rome")
    page.locator("#labeling-item").click()
    page.keyboard.press("Control+s")  # a draft, not the browser's save dialog
    expect(page.locator("#labeling-message")).to_contain_text("Draft saved", timeout=10_000)
    editor.fill("Roma")
    page.locator("#labeling-item").click()
    page.keyboard.press("Enter")
    expect(page.locator("#labeling-message")).to_contain_text(re.compile(r"Edited item \d+"), timeout=10_000)
    with connect(engine.settings.db_path) as db:
        values = [r.value for r in fb.list_responses(db, queue="browser-fixes", labeler="lee")]
    assert sorted(values) == ["Berlin", "Paris", "Roma"]


def test_review_adjudicates_a_disagreement_and_exports(page, ui_url, engine):
    from playwright.sync_api import expect

    make_queue(engine, "browser-review", "label", ["one"], labels=["good", "bad"], k=2)
    with connect(engine.settings.db_path) as db:
        [item] = fb.list_items(db, "browser-review")
        fb.respond(db, item.id, "kim", "good")
        fb.respond(db, item.id, "lee", "bad")
    open_queue(page, ui_url, "ana", "browser-review", done="0 of 0 done")
    page.get_by_role("tab", name="Review").click()
    expect(page.locator("#review-agreement")).to_contain_text("Percent agreement", timeout=20_000)
    page.locator("#review-disagreements span").get_by_text("kim: good | lee: bad").click()
    expect(page.locator("#review-detail")).to_contain_text("lee", timeout=10_000)
    page.locator("#review-final-choice input").click()
    page.get_by_role("option", name="bad", exact=True).click()
    page.locator("#review-adjudicate").click()
    expect(page.locator("#review-adjudicate-message")).to_contain_text("Final answer for item", timeout=10_000)
    with connect(engine.settings.db_path) as db:
        assert (fb.get_adjudication(db, item.id).value, fb.get_adjudication(db, item.id).adjudicator) == ("bad", "ana")
    page.get_by_text("Export / import").click()
    page.get_by_label("CSV (review table)").check()
    page.locator("#review-export").click()
    expect(page.locator("#review-export-message")).to_contain_text("Exported 1 row(s)", timeout=10_000)
    expect(page.locator("#review-download")).to_contain_text("browser-review-csv", timeout=10_000)
