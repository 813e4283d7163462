"""The Playground in a real browser: type a question, press Enter, see the reply stream into the chat.

Needs Debian's chromium (`apt-get install chromium`) and `pip install playwright`; skipped otherwise.
"""

from __future__ import annotations

import pytest

from tests.conftest import PARIS_QUESTION
from tests.ui.browser import NEEDS_BROWSER, open_page

pytestmark = NEEDS_BROWSER


@pytest.fixture(scope="module")
def page():
    yield from open_page()


def test_paris_question_in_the_browser(page, ui_url):
    page.goto(ui_url)
    box = page.locator("#playground-message textarea")
    box.fill(PARIS_QUESTION)
    box.press("Enter")
    page.locator("#playground-chat").get_by_text("Paris").wait_for(timeout=120_000)
    page.locator("#playground-status").get_by_text("tokens/s").wait_for(timeout=30_000)
    from playwright.sync_api import expect

    expect(box).to_have_value("", timeout=10_000)  # the message box empties once the reply is in
