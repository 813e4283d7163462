"""Views that are never stale, in a real browser (issue 21): the Leaderboard counts a vote cast elsewhere as soon
as it is opened (no Refresh), a queue made in the Labeling tab is offered by the Evaluate tab's queue picker
when that tab opens, and the open tab and sub-tab live in the URL, so a reload or a shared link opens them.

Needs Debian's chromium and playwright (never `playwright install`); skipped otherwise.
"""

from __future__ import annotations

import re

import pytest

from llmplay.arena import Contestant, draw_battle, save_battle, set_outputs
from llmplay.feedback import store as fb
from llmplay.store import connect
from tests.conftest import BASE_MODEL, CHAT_MODEL
from tests.ui.browser import NEEDS_BROWSER, open_page

pytestmark = NEEDS_BROWSER


@pytest.fixture(scope="module")
def page():
    yield from open_page()


def counted_votes(page) -> int:
    from playwright.sync_api import expect

    summary = page.locator("#leaderboard-summary")
    expect(summary).to_contain_text("counted vote(s)", timeout=60_000)
    return int(re.search(r"(\d+) counted vote", summary.inner_text()).group(1))


def stored_battle(engine) -> str:
    """A battle with both replies in, as the Arena stores it (the vote below goes through the app)."""
    with connect(engine.settings.db_path) as db:
        battle = save_battle(db, draw_battle([Contestant(CHAT_MODEL), Contestant(BASE_MODEL)], "Say hi."))
        set_outputs(db, battle.id, "Hi!", "Say hi. Say hi.")
    return battle.id


def test_the_leaderboard_counts_a_vote_when_it_is_opened(page, ui_url, client, engine):
    from playwright.sync_api import expect

    page.goto(ui_url)
    page.get_by_role("tab", name="Leaderboard").click()
    before = counted_votes(page)
    page.get_by_role("tab", name="Arena").click()
    vote = client.predict(battle_id=stored_battle(engine), winner="a", user="voter", api_name="/arena_vote")
    assert vote["counted"] and vote["error"] is None, vote
    # opening the tab is enough: no Refresh pressed (it said "0 counted votes" after two votes until Refresh)
    page.get_by_role("tab", name="Leaderboard").click()
    expect(page.locator("#leaderboard-summary")).to_contain_text(f"{before + 1} counted vote(s)", timeout=60_000)


def test_a_queue_made_in_labeling_is_offered_by_evaluate_when_it_opens(page, ui_url, engine):
    from playwright.sync_api import expect

    page.goto(ui_url)
    page.get_by_role("tab", name="Evaluate").click()  # the page has read the queues: there is no fresh-queue yet
    with connect(engine.settings.db_path) as db:  # made meanwhile (another page, a script)
        fb.create_queue(db, "fresh-queue", "correction", user="admin")
    page.get_by_role("tab", name="Playground").click()
    page.get_by_role("tab", name="Evaluate").click()
    page.get_by_role("tab", name="Results").click()
    page.locator("#eval-queue-rows").get_by_text("Send rows to a labeling queue").click()
    picker = page.locator("#evaluate-feedback-queue input")
    picker.click()
    expect(page.get_by_role("option", name="fresh-queue", exact=True)).to_be_visible(timeout=30_000)
    page.keyboard.press("Escape")


def selected_tabs(page) -> list[str]:
    return page.locator("button[role=tab][aria-selected=true]").evaluate_all(
        "els => els.filter(e => e.offsetParent !== null).map(e => e.dataset.tabId)"
    )


def test_a_reload_or_a_shared_link_opens_the_tab_and_sub_tab(page, ui_url):
    from playwright.sync_api import expect

    page.goto(ui_url)
    page.get_by_role("tab", name="Labeling").click()
    page.get_by_role("tab", name="Review").click()
    page.wait_for_function("() => location.search.includes('sub=labeling-review')", timeout=10_000)
    assert "tab=labeling" in page.evaluate("location.search")
    page.reload()  # was: always the Playground
    expect(page.locator("#review-queue")).to_be_visible(timeout=60_000)
    assert selected_tabs(page) == ["labeling", "labeling-review"]

    page.goto(ui_url.rstrip("/") + "/?tab=leaderboard")  # a shared link
    expect(page.locator("#leaderboard-summary")).to_be_visible(timeout=60_000)
    assert selected_tabs(page) == ["leaderboard"]
    page.get_by_role("tab", name="Arena").click()  # switching writes the URL again, without the old sub-tab
    page.wait_for_function("() => location.search === '?tab=arena'", timeout=10_000)
