"""The Playground in a real browser: type a question, press Enter, see the reply stream into the chat.

Needs Debian's chromium (`apt-get install chromium`) and `pip install playwright`; skipped otherwise.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.conftest import PARIS_QUESTION

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium is not installed"),
    pytest.mark.skipif(importlib.util.find_spec("playwright") is None, reason="playwright is not installed"),
]


@pytest.fixture(scope="module")
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser.new_page(viewport={"width": 1400, "height": 1000})
        browser.close()


def test_paris_question_in_the_browser(page, ui_url):
    page.goto(ui_url)
    box = page.locator("#playground-message textarea")
    box.fill(PARIS_QUESTION)
    box.press("Enter")
    page.locator("#playground-chat").get_by_text("Paris").wait_for(timeout=120_000)
    page.locator("#playground-status").get_by_text("tokens/s").wait_for(timeout=30_000)
    from playwright.sync_api import expect

    expect(box).to_have_value("", timeout=10_000)  # the message box empties once the reply is in
