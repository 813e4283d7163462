"""Debian's chromium driven through playwright (never `playwright install`): the one setup every browser test
shares. ``NEEDS_BROWSER`` skips a module with a reason when either is missing; ``open_page`` yields a page."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
NEEDS_BROWSER = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium is not installed"),
    pytest.mark.skipif(importlib.util.find_spec("playwright") is None, reason="playwright is not installed"),
]


def open_page(width: int = 1400, height: int = 1000):
    """A page of a fresh chromium (a generator: use it as a fixture's body with ``yield from``)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": width, "height": height})
        # Actions wait up to 90 s, not Playwright's 30: on two busy cores (the app, chromium and the test in one
        # machine) a click once took over 30 s to complete; a slow machine makes a test slower, never red.
        page.set_default_timeout(90_000)
        yield page
        browser.close()
