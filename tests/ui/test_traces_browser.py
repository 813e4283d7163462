"""The Traces tab in a real browser: a stored API trace is listed, picked, and opened in Compare, whose form then
holds its message and the model that answered it."""

from __future__ import annotations

import importlib.util

import pytest

from llmplay import traces
from tests.conftest import CHAT_MODEL
from tests.ui.browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.slow


def test_a_trace_opens_in_compare_with_its_message_and_model(ui_url, engine):
    if not CHROMIUM.exists() or importlib.util.find_spec("playwright") is None:
        pytest.skip("needs Debian's chromium and playwright")
    from playwright.sync_api import expect, sync_playwright

    traces.record(
        engine.settings, id="chatcmpl-browser-trace", user="app", endpoint="chat", model=CHAT_MODEL, served=CHAT_MODEL,
        line=None, request=[{"role": "user", "content": "Name a colour of the sky."}], params={"max_new_tokens": 9},
        reply="Blue.", finish_reason="stop", error=None, prompt_tokens=8, completion_tokens=2, latency_s=0.2,
        ttft_s=0.1, backend="fast", stream=False,
    )  # fmt: skip
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1200})
            page.goto(ui_url + "?tab=traces")
            search = page.get_by_label("Text in request or reply")
            search.fill("colour of the sky")
            search.press("Enter")
            cell = page.locator("#traces-table").get_by_text("chatcmpl-browser-trace").locator("visible=true").first
            cell.wait_for(timeout=30_000)
            cell.click()
            expect(page.locator("#traces-detail")).to_contain_text("Name a colour of the sky.", timeout=30_000)
            page.locator("#traces-open-compare").click()

            expect(page.get_by_role("tab", name="Compare")).to_have_attribute("aria-selected", "true", timeout=30_000)
            expect(page.locator("#compare-status")).to_contain_text("Opened API trace chatcmpl-browser-trace")
            expect(page.locator("#compare-message textarea")).to_have_value("Name a colour of the sky.")
            expect(page.locator("#compare-status")).to_contain_text("“Blue.”")  # the trace's reply, under column 1
        finally:
            browser.close()
