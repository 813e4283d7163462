"""Status markers that render everywhere: the emoji in the UI's messages (✅ ⏳ ⏹️ ❌ 🗑️ ...) draw as empty boxes
where no emoji font is installed (Debian's chromium with only DejaVu). ``marker_style()`` is a <style> that
gives them drawn monochrome shapes (llmplay/ui/marker_font.py, built by tools/marker_font.py): the face is
added under the theme's own font names with a ``unicode-range`` of just those code points, so every other
character keeps the theme's font and no message text changes (scripts still match "✅ ..." and "⚠️ Error: ...").
"""

from __future__ import annotations

from llmplay.ui.marker_font import CODE_POINTS, WOFF_BASE64

FAMILY = "llmplay markers"
# The named (non-generic) families of Gradio's default theme: its text font and its code font.
THEME_FAMILIES = ("Source Sans Pro", "IBM Plex Mono")


def marker_style() -> str:
    """A <style> element with the marker face under each theme family (and its own name). ``swap``: text never
    waits invisible for a face (with ``block``, clicks on the page's tabs stalled in Chromium)."""
    ranges = ", ".join(f"U+{code:X}" for code in CODE_POINTS)
    src = f'url("data:font/woff;base64,{"".join(WOFF_BASE64)}") format("woff")'
    faces = "".join(
        f'@font-face {{font-family: "{family}"; src: {src}; unicode-range: {ranges}; font-display: swap;}}'
        for family in (FAMILY, *THEME_FAMILIES)
    )
    return f"<style>{faces}</style>"
