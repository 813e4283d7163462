"""The server's Content-Security-Policy in a real browser: Gradio's page logs in and works with no violation,
and an image from another origin (a tracker in a queue's guidelines, say) is never requested.

Needs Debian's chromium and playwright; skipped otherwise."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.auth.team import add_team, make_settings, start
from tests.ui.browser import NEEDS_BROWSER, open_page

pytestmark = NEEDS_BROWSER

RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener(
  "securitypolicyviolation", (e) => window.__violations.push(e.violatedDirective + " " + e.blockedURI)
);
"""


@pytest.fixture(scope="module")
def team(tmp_path_factory, model_cache_dir):
    settings = make_settings(tmp_path_factory.mktemp("csp-browser") / "data", model_cache_dir)
    add_team(settings)
    running = start(settings)
    yield running
    running.served.close()


@pytest.fixture()
def tracker():
    """A server on another origin that counts the requests it gets."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()


@pytest.fixture()
def page():
    yield from open_page()


def test_the_page_works_under_the_policy_and_remote_images_are_blocked(page, team, tracker):
    from playwright.sync_api import expect

    page.add_init_script(RECORD_VIOLATIONS)
    page.goto(team.url)
    page.get_by_label("username").fill("ada")
    page.get_by_label("password").fill("ada-password")
    page.get_by_role("button", name="Login").click()
    expect(page.locator("#signed-in")).to_contain_text("signed in as ada (admin)", timeout=30_000)
    page.get_by_role("tab", name="Templates", exact=True).click()
    expect(page.get_by_role("button", name="Save version")).to_be_visible()
    assert page.evaluate("window.__violations") == []

    url, hits = tracker
    page.evaluate(
        "src => { const img = document.createElement('img'); img.src = src; document.body.appendChild(img); }",
        url + "/pixel.png",
    )
    page.wait_for_function("window.__violations.length > 0", timeout=10_000)
    assert page.evaluate("window.__violations") == [f"img-src {url}/pixel.png"]
    assert hits == []
