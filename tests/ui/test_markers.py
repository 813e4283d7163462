"""Status emoji never draw as empty boxes: every emoji-block character in the app's source is either one that
common text fonts carry (DejaVu: ⚠ ✍ ✏ ✓ ✗ ...) or one the marker font draws (llmplay/ui/markers.py). A new
emoji in a message fails here until tools/marker_font.py draws it. (The browser test in
test_compare_templates_browser.py checks that Chromium really draws ✅ with the marker font.)"""

from __future__ import annotations

import base64
from pathlib import Path

from llmplay.ui.marker_font import CODE_POINTS, WOFF_BASE64
from llmplay.ui.markers import FAMILY, THEME_FAMILIES, marker_style

PACKAGE = Path(__file__).resolve().parents[2] / "llmplay"
EMOJI_BLOCKS = [(0x2300, 0x23FF), (0x2600, 0x27BF), (0x2B00, 0x2BFF), (0x1F000, 0x1FAFF)]
IN_TEXT_FONTS = {0x26A0, 0x2139, 0x270D, 0x270F, 0x2713, 0x2714, 0x2716, 0x2717, 0x2605, 0x2606}


def test_every_emoji_in_the_app_is_drawn_by_a_text_font_or_the_marker_font():
    missing: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for ch in set(path.read_text(encoding="utf-8")):
            code = ord(ch)
            if any(lo <= code <= hi for lo, hi in EMOJI_BLOCKS) and code not in IN_TEXT_FONTS | set(CODE_POINTS):
                missing.setdefault(f"U+{code:X} {ch}", set()).add(str(path.relative_to(PACKAGE.parent)))
    assert not missing, f"draw these in tools/marker_font.py (or use text): {missing}"


def test_the_style_adds_the_face_under_the_theme_families_for_just_the_markers():
    style = marker_style()
    assert style.startswith("<style>") and style.endswith("</style>")
    for family in (FAMILY, *THEME_FAMILIES):
        assert f'font-family: "{family}"' in style
    assert "unicode-range: U+231B, " in style and "U+2705" in style and "U+41" not in style
    assert base64.b64decode("".join(WOFF_BASE64))[:4] == b"wOFF"
