"""The Playground's Stop in a real browser (issue 21): Stop ends the reply with "Stopped" and the partial reply's
own stats (it said "Generating with ..." forever, and the partial reply had none), and every reply keeps its stats.

Needs Debian's chromium and playwright (never `playwright install`); skipped otherwise.
"""

from __future__ import annotations

import re

import pytest

from llmplay.chat_replies import REPLIES
from llmplay.store import connect
from tests.ui.browser import NEEDS_BROWSER, open_page

pytestmark = NEEDS_BROWSER
LONG = 2048  # max new tokens of the reply that Stop cuts: far more than it writes before the click lands


@pytest.fixture(scope="module")
def page():
    yield from open_page()


def send(page, message: str, max_new_tokens: int) -> None:
    page.get_by_label("Max new tokens (1–2048)").fill(str(max_new_tokens))
    box = page.locator("#playground-message textarea")
    box.fill(message)
    box.press("Enter")


def test_stop_ends_with_stopped_and_the_partial_reply_keeps_its_stats(page, ui_url, engine):
    from playwright.sync_api import expect

    page.goto(ui_url)
    status, chat = page.locator("#playground-status"), page.locator("#playground-chat")
    send(page, "Name a colour. One word.", 8)
    expect(status).to_contain_text("tokens/s", timeout=180_000)
    expect(status).not_to_contain_text("processing", timeout=30_000)

    send(page, "Write a long story about a dragon who loves tea.", LONG)
    # the reply is being written: its note says so, shown with the first text
    expect(chat).to_contain_text("writing", timeout=180_000)
    # a click from the page's own script: playwright's locators wait for a quiet page, which a streaming chat on
    # a loaded machine is not until the reply ends
    page.evaluate("document.querySelector('#playground-stop').click()")
    expect(status).to_contain_text("Stopped", timeout=240_000)  # a loaded machine renders the stream slowly
    text = status.inner_text()
    assert "tokens/s" in text and "first token" in text, text
    tokens = int(re.search(r"(\d+) tokens in", text).group(1))
    assert 0 < tokens < LONG, f"Stop ended the reply early, with its own token count: {text}"
    assert "Generating" not in text

    # every reply keeps its stats: the first reply's note and the stopped one's, each above its reply
    notes = chat.get_by_text(re.compile(r"tokens/s .* tokens in"))
    expect(notes).to_have_count(2, timeout=30_000)
    assert "stopped" in notes.nth(1).inner_text() and "stopped" not in notes.nth(0).inner_text()
    # the partial reply is kept like a finished one (ratings and corrections refer to the stored reply)
    with connect(engine.settings.db_path) as db:
        (kept,) = db.query(f"select output from {REPLIES} order by id desc limit 1")
    assert kept["output"] and kept["output"].split()[0] in chat.inner_text()
