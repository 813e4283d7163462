"""Issue 21's first impressions of Compare and Templates, in Chromium on the real app with the bundled models:

- Compare: a template's few-shot examples fold into one closed box above the answer; the feedback pickers offer
  only the columns that exist; "New comparison" starts clean (no template, no variables, no replies).
- Templates: the diff of two versions is coloured (added green, removed red) and hostile text in it stays inert;
  the saved versions are offered in Compare's template picker.

``LLMPLAY_ISSUE21_SCREENSHOTS=<folder>`` saves PNGs of both views there (docs/screenshots/issue21/).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from llmplay.templates import TemplateLibrary
from tests.ui.browser import NEEDS_BROWSER, open_page

pytestmark = NEEDS_BROWSER
SHOTS = os.environ.get("LLMPLAY_ISSUE21_SCREENSHOTS")
HOSTILE = """\
name: diff-browser
description: "{description}"
task: generation
variables: [{{name: text}}]
body: "{body} {{{{ text }}}}"
"""


@pytest.fixture(scope="module")
def page():
    yield from open_page(width=1500, height=1100)


def pick(page, box, option: str) -> None:
    """Choose ``option`` in a Gradio dropdown (typing filters a long list first)."""
    box.click()
    box.fill(option)
    page.get_by_role("option", name=option, exact=True).click()


def fonts_drawing(page, selector: str) -> set[str]:
    """The fonts Chromium really used to draw the text of the first element matching ``selector`` (CDP)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument", {"depth": -1, "pierce": True})["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    cdp.detach()
    return {f["familyName"] for f in fonts}


def shoot(page, locator, name: str) -> None:
    """A PNG of the window with ``locator`` at its top, for the issue's note (palette-reduced: small)."""
    if not SHOTS:
        return
    from PIL import Image

    path = Path(SHOTS) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    locator.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(300)
    page.screenshot(path=str(path))
    Image.open(path).convert("RGB").quantize(colors=128).save(path, optimize=True)
    assert path.stat().st_size < 200_000, f"{path} is {path.stat().st_size} bytes"


def test_compare_folds_few_shot_turns_offers_existing_columns_and_starts_clean(page, ui_url):
    from playwright.sync_api import expect

    page.goto(ui_url)
    page.get_by_role("tab", name="Compare").click()
    pick(page, page.locator("#compare-template-1 input"), "financial-sentiment")
    values = page.locator("#compare-values .cm-content")
    expect(values).to_contain_text('"text"', timeout=20_000)  # the template's variables as a skeleton
    values.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(json.dumps({"text": "Operating profit rose to EUR 13.1 mn."}))
    page.locator("#compare-decoding-1").get_by_text("Decoding and weights").click()
    tokens = page.locator("#compare-max-new-tokens-1 input")
    expect(tokens).to_have_value("384")  # the default lets a free reply finish
    tokens.fill("8")
    tokens.press("Tab")
    page.wait_for_timeout(500)  # let the app take the new value before the run reads the form
    page.locator("#compare-decoding-1").get_by_text("Decoding and weights").click()  # closed again
    box = page.locator("#compare-message textarea")
    box.fill("Say hello in five words.")
    page.locator("#compare-run").click()
    for number in (1, 2):
        page.locator(f"#compare-stats-{number}").get_by_text("tokens/s").wait_for(timeout=180_000)

    assert "llmplay markers" in fonts_drawing(page, "#compare-stats-1 p"), "✅ draws as a marker, not a box"
    chat = page.locator("#compare-chat-1")
    expect(chat).to_contain_text("few-shot examples from the template", timeout=10_000)
    expect(chat.get_by_text("Operating profit rose to EUR 13.1 mn.")).to_be_visible()
    example = chat.get_by_text("Net sales increased by 12 %")
    assert example.count() == 0 or not example.first.is_visible(), "the examples stay folded"

    page.get_by_text("Send to feedback (a preferred/rejected pair").click()
    page.locator("#compare-preferred input").click()
    options = page.get_by_role("option")
    expect(options).to_have_count(2)  # two columns ran: no Column 3 or 4 to pick
    expect(options.first).to_contain_text("Column 1 · ")
    page.keyboard.press("Escape")
    shoot(page, page.locator("#compare-template-1"), "compare.png")

    page.get_by_role("button", name="New comparison").click()
    expect(page.locator("#compare-status")).to_contain_text("New comparison", timeout=20_000)
    expect(page.locator("#compare-template-1 input")).to_have_value("(none — free message)")
    expect(values).not_to_contain_text("Operating profit")
    expect(page.locator("#compare-chat-1")).to_contain_text("reply streams here")
    expect(page.locator("#compare-chat-1")).not_to_contain_text("few-shot")
    expect(box).to_have_value("")
    expect(page.locator("#compare-diff")).to_contain_text("Run a comparison")


def test_template_diff_is_coloured_and_inert_and_versions_are_offered_in_compare(page, ui_url, engine, ui_prompts_dir):
    from playwright.sync_api import expect

    library = TemplateLibrary.from_settings(engine.settings, ui_prompts_dir)
    hostile = "<img src=x onerror=window.__pwned=1><script>window.__pwned=2</script>"
    library.save(HOSTILE.format(description="Plain.", body="Classify:"), message="first")
    library.save(HOSTILE.format(description=hostile, body="Label this:"), message="hostile text")

    page.goto(ui_url)
    page.get_by_role("tab", name="Templates").click()
    pick(page, page.locator("#templates-picker input"), "diff-browser")
    expect(page.locator("#templates-history-note")).to_be_empty(timeout=20_000)
    # the picked template's versions fill From / To: a Diff pressed before that (a busy machine) has nothing to show
    for end in ("from", "to"):
        expect(page.locator(f"#templates-diff-{end} input")).not_to_have_value("", timeout=20_000)
    page.get_by_role("button", name="Diff", exact=True).click()
    diff = page.locator("#templates-diff")
    added, removed = diff.locator(".udiff-add"), diff.locator(".udiff-del")
    expect(added.filter(has_text="Label this:")).to_have_count(1, timeout=20_000)
    expect(removed.filter(has_text="Classify:")).to_have_count(1)
    assert added.first.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(230, 255, 236)"
    assert removed.first.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(255, 235, 233)"
    expect(added.filter(has_text="<script>window.__pwned=2</script>")).to_have_count(1)  # shown as text
    assert diff.locator("img, script").count() == 0 and page.evaluate("window.__pwned") is None
    shoot(page, page.locator("#templates-history-note"), "templates-diff.png")

    page.get_by_role("tab", name="Compare").click()  # built before the versions were saved: opening the picker
    box = page.locator("#compare-template-2 input")  # reads them again
    box.click()
    page.wait_for_timeout(1000)
    box.fill("diff-browser@v1")
    expect(page.get_by_role("option", name="diff-browser@v1 · ", exact=False)).to_have_count(1, timeout=20_000)
    page.get_by_role("option", name="diff-browser@v1 · ", exact=False).click()
    expect(box).to_have_value(re.compile(r"^diff-browser@v1 · .* · first$"))
    page.keyboard.press("Escape")
