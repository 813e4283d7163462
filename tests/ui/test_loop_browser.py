"""The Loop tab in a real browser: it shows a finished update's gate results, and a rollback changes the
active version that the Playground's model info describes for ``line:<name>``.

The line, its versions (over a dummy adapter folder) and its finished updates are written straight into the
app's database (no training). Needs Debian's chromium and playwright; skipped otherwise.
"""

from __future__ import annotations

import pytest

from llmplay.loop import lines
from llmplay.store import connect
from tests.ui.browser import NEEDS_BROWSER, open_page
from tests.ui.test_loop_tab import seed_line

LINE = "browser-line"

pytestmark = NEEDS_BROWSER


@pytest.fixture(scope="module")
def page():
    yield from open_page()


def pick(page, box, option: str) -> None:
    """Choose ``option`` in a Gradio dropdown (typing filters a long list first)."""
    box.click()
    box.fill(option)
    page.get_by_role("option", name=option, exact=True).click()


def playground_model(page, model: str) -> None:
    page.get_by_role("tab", name="Playground").click()
    pick(page, page.get_by_label("Model", exact=True).filter(visible=True), model)


def playground_model_info(page, model: str, expected: str) -> None:
    from playwright.sync_api import expect

    playground_model(page, model)
    expect(page.get_by_text(expected)).to_be_visible(timeout=20_000)


def test_gates_show_and_a_rollback_changes_what_the_playground_serves(page, ui_url, engine):
    from playwright.sync_api import expect

    seeded = seed_line(engine.settings.db_path, engine.settings.data_dir / "loop-browser-adapter", LINE)
    v1, v2, _ = seeded["versions"]
    page.goto(ui_url)
    # The Playground serves the line's active version (v2, promoted by its update's gates).
    playground_model_info(page, f"line:{LINE}", f"model line {LINE}: active = {v2.label}")

    page.get_by_role("tab", name="Loop").click()
    # Before a line is picked, the empty tab says what to do (no blank, untitled charts).
    expect(page.locator("#loop-empty")).to_contain_text("No model line picked", timeout=20_000)
    expect(page.locator("#loop-probe_task-title")).to_contain_text("Forgetting: probe task accuracy")
    expect(page.locator("#loop-volume-title")).to_contain_text("pick one above, or create one")
    pick(page, page.locator("#loop-line input"), LINE)
    expect(page.locator("#loop-status")).to_contain_text(f"Active: {v2.label}", timeout=20_000)
    expect(page.locator("#loop-empty")).to_be_empty()
    timeline = page.locator("#loop-timeline")
    expect(timeline).to_contain_text("✗ fail · accuracy 0.800 → 0.710 (-0.090, 95% CI -0.130 to -0.060, n=60)")
    expect(timeline).to_contain_text("✓ pass · accuracy 0.550 → 0.650 (+0.100, 95% CI +0.050 to +0.150, n=40)")
    expect(timeline).to_contain_text("dropped by 0.090")

    page.locator("#loop-user textarea, #loop-user input").first.fill("root")
    pick(page, page.locator("#loop-rollback-version input"), v1.label)
    page.locator("#loop-rollback-confirm input").check()
    page.locator("#loop-rollback").click()
    expect(page.locator("#loop-message")).to_contain_text(f"Rolled back: {LINE} serves {v1.label} now.", timeout=20_000)
    expect(page.locator("#loop-status")).to_contain_text(f"Active: {v1.label}", timeout=20_000)
    expect(page.locator("#loop-events")).to_contain_text("rollback")
    with connect(engine.settings.db_path) as db:
        line = lines.get_line(db, LINE)
        assert line.active_version_id == v1.id
        assert lines.events(db, line)[0]["user"] == "root"

    # Back in the Playground, the same picker name now describes v1.
    playground_model(page, engine.settings.default_model)  # so picking the line again is a change
    expect(page.get_by_text(f"model line {LINE}")).to_have_count(0, timeout=20_000)
    playground_model_info(page, f"line:{LINE}", f"model line {LINE}: active = {v1.label}")
