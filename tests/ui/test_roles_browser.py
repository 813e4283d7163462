"""Log in as each role on Gradio's login page of a server with users and see what the role can use: the
labeler sees no Train or Loop tab and no admin controls, the viewer no Labeling tab either, the admin all.

Screenshots (one per role) go to $LLMPLAY_TEST_ARTIFACTS when set, else to the test's temp dir (never the
repo). Needs Debian's chromium and playwright; skipped otherwise."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.auth.team import add_team, make_settings, start
from tests.ui.browser import NEEDS_BROWSER, open_page

pytestmark = NEEDS_BROWSER

ALWAYS = ["Playground", "Templates", "Evaluate", "Compare", "Arena", "Leaderboard"]
EXPECTED = {
    "ada": ("signed in as ada (admin)", ALWAYS + ["Train", "Labeling", "Loop"], []),
    "lab": ("signed in as lab (labeler)", ALWAYS + ["Labeling"], ["Train", "Loop"]),
    "vic": ("signed in as vic (viewer)", ALWAYS, ["Train", "Labeling", "Loop"]),
}


@pytest.fixture(scope="module")
def team(tmp_path_factory, model_cache_dir):
    settings = make_settings(tmp_path_factory.mktemp("roles-browser") / "data", model_cache_dir)
    add_team(settings)
    running = start(settings)
    yield running
    running.served.close()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("LLMPLAY_TEST_ARTIFACTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture()
def page():
    yield from open_page()  # a fresh browser per role: no session cookie carries over


@pytest.mark.parametrize("user", list(EXPECTED))
def test_each_role_sees_what_it_may_use(page, team, artifacts, user):
    from playwright.sync_api import expect

    header, shown, hidden = EXPECTED[user]
    page.goto(team.url)
    name, password = team.auth(user)
    page.get_by_label("username").fill(name)
    page.get_by_label("password").fill(password)
    page.get_by_role("button", name="Login").click()
    expect(page.locator("#signed-in")).to_contain_text(header, timeout=30_000)
    tabs = page.locator("#main-tabs")
    for tab in shown:
        expect(tabs.get_by_role("tab", name=tab, exact=True)).to_be_visible()
    for tab in hidden:
        expect(tabs.get_by_role("tab", name=tab, exact=True)).to_be_hidden()
    # Admin controls: the Templates tab's Save button and the Playground's "Add a model" panel.
    page.get_by_role("tab", name="Templates", exact=True).click()
    save = page.get_by_role("button", name="Save version")
    if user == "ada":
        expect(save).to_be_visible()
    else:
        expect(save).to_have_count(0)
    page.get_by_role("tab", name="Playground", exact=True).click()
    add_model = page.get_by_text("Add a model")
    expect(add_model).to_be_visible() if user == "ada" else expect(add_model).to_have_count(0)
    page.screenshot(path=str(artifacts / f"roles-{user}.png"), full_page=True)
