"""Build llmplay/ui/marker_font.py: a tiny web font of drawn status markers, for the emoji the UI's messages
use (✅ ⏳ ⏹️ ❌ 🗑️ ...), so they show as plain monochrome marks where no emoji font is installed (Debian's
chromium with only DejaVu draws them as empty boxes). The app adds its @font-face under the theme's font
names with a ``unicode-range`` of just these code points: every other character keeps the theme's font, and
no message text changes (scripts still match "✅ ..." and "⚠️ Error: ...").

The shapes are drawn here from straight lines (no glyph is copied from any other font). Run when a marker is
added (fontTools is a build-time tool only, not a dependency of the app):

    python3 -m venv /tmp/ft && /tmp/ft/bin/pip install fonttools && /tmp/ft/bin/python tools/marker_font.py
"""

from __future__ import annotations

import base64
import io
import math
from pathlib import Path

from fontTools.fontBuilder import FontBuilder
from fontTools.pens.ttGlyphPen import TTGlyphPen

OUT = Path(__file__).resolve().parents[1] / "llmplay" / "ui" / "marker_font.py"
FAMILY = "llmplay markers"
EM, ASCENT, DESCENT = 1000, 800, -200


def rect(x0, y0, x1, y1):
    return [(x0, y0), (x0, y1), (x1, y1), (x1, y0)]  # clockwise: filled


def hole(x0, y0, x1, y1):
    return list(reversed(rect(x0, y0, x1, y1)))  # counter-clockwise: a hole in a filled contour


def bar(x0, y0, x1, y1, width):
    """A straight stroke from (x0, y0) to (x1, y1), ``width`` thick, as a clockwise quadrilateral."""
    dx, dy = x1 - x0, y1 - y0
    length = math.hypot(dx, dy)
    nx, ny = -dy / length * width / 2, dx / length * width / 2
    pts = [(x0 + nx, y0 + ny), (x1 + nx, y1 + ny), (x1 - nx, y1 - ny), (x0 - nx, y0 - ny)]
    return clockwise(pts)


def clockwise(pts):
    area = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1]))
    return pts if area < 0 else list(reversed(pts))


def star(cx, cy, outer, inner, points=5):
    pts = []
    for i in range(points * 2):
        r = outer if i % 2 == 0 else inner
        a = math.pi / 2 - i * math.pi / points
        pts.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    return clockwise(pts)


def circle(cx, cy, r, n=24):
    return clockwise(
        [(cx + r * math.cos(2 * math.pi * i / n), cy + r * math.sin(2 * math.pi * i / n)) for i in range(n)]
    )


CHECK = [clockwise([(90, 390), (200, 500), (380, 320), (790, 730), (900, 620), (380, 100)])]
HOURGLASS = [
    rect(170, 700, 830, 780),
    rect(170, 0, 830, 80),
    clockwise([(230, 700), (770, 700), (530, 390), (470, 390)]),
    clockwise([(470, 390), (530, 390), (770, 80), (230, 80)]),
]
STOPWATCH = [circle(500, 340, 330), list(reversed(circle(500, 340, 250))), bar(500, 340, 640, 500, 70),
             rect(440, 670, 560, 760), rect(380, 740, 620, 800)]  # fmt: skip
STOP = [rect(170, 60, 830, 720)]
PAUSE = [rect(220, 60, 420, 720), rect(580, 60, 780, 720)]
NEXT = [clockwise([(120, 80), (120, 700), (420, 390)]), clockwise([(420, 80), (420, 700), (720, 390)]),
        rect(740, 80, 860, 700)]  # fmt: skip
PLAY = [clockwise([(230, 60), (230, 720), (830, 390)])]
CROSS = [bar(180, 90, 820, 730, 150), bar(180, 730, 820, 90, 150)]
TRASH = [rect(150, 620, 850, 690), rect(400, 690, 600, 780), clockwise([(220, 590), (780, 590), (720, 0), (280, 0)])]
FLOPPY = [clockwise([(120, 0), (880, 0), (880, 620), (720, 780), (120, 780)]), hole(270, 470, 680, 720),
          hole(260, 80, 740, 360)]  # fmt: skip
PARTY = [star(500, 390, 400, 170)]
THUMB_UP = [rect(100, 0, 260, 440), clockwise([(300, 0), (800, 0), (880, 380), (600, 440), (600, 780), (480, 780),
            (380, 460), (300, 440)])]  # fmt: skip
THUMB_DOWN = [[(x, 780 - y) for x, y in reversed(contour)] for contour in THUMB_UP]
TRAY = [(80, 320), (80, 0), (920, 0), (920, 320), (800, 320), (800, 110), (200, 110), (200, 320)]
INBOX = [rect(430, 380, 570, 780), clockwise([(270, 400), (730, 400), (500, 170)]), clockwise(TRAY)]
PENCIL = [clockwise([(120, 60), (300, 100), (860, 660), (720, 800), (160, 240)])]

GLYPHS = {  # code point -> shape (several code points may share one)
    0x2705: CHECK,  # ✅ done / sent / saved
    0x23F3: HOURGLASS,  # ⏳ waiting / loading
    0x231B: HOURGLASS,  # ⌛
    0x23F1: STOPWATCH,  # ⏱ an estimate
    0x23F9: STOP,  # ⏹ stopped
    0x23F8: PAUSE,  # ⏸
    0x23ED: NEXT,  # ⏭ skipped
    0x1F3C3: PLAY,  # 🏃 running
    0x274C: CROSS,  # ❌ failed
    0x1F5D1: TRASH,  # 🗑 deleted
    0x1F4BE: FLOPPY,  # 💾 draft saved
    0x1F389: PARTY,  # 🎉 nothing left
    0x1F44D: THUMB_UP,  # 👍
    0x1F44E: THUMB_DOWN,  # 👎
    0x1F4E5: INBOX,  # 📥 opened / received
    0x1F4DD: PENCIL,  # 📝 a new draft
}


def glyph(contours):
    pen = TTGlyphPen(None)
    for contour in contours:
        pts = [(round(x), round(y)) for x, y in contour]
        pen.moveTo(pts[0])
        for p in pts[1:]:
            pen.lineTo(p)
        pen.closePath()
    return pen.glyph()


def build() -> bytes:
    names = {".notdef": [], "space": []}
    cmap = {0x20: "space"}  # (the emoji variation selector U+FE0F is default-ignorable: browsers skip it)
    for code, contours in GLYPHS.items():
        name = f"u{code:04X}"
        names[name] = contours
        cmap[code] = name
    fb = FontBuilder(EM, isTTF=True)
    fb.setupGlyphOrder(list(names))
    fb.setupCharacterMap(cmap)
    fb.setupGlyf({n: glyph(c) for n, c in names.items()})
    fb.setupHorizontalMetrics({n: (EM if c else 300, 0) for n, c in names.items()})
    fb.setupHorizontalHeader(ascent=ASCENT, descent=DESCENT)
    fb.setupNameTable({"familyName": FAMILY, "styleName": "Regular"})
    fb.setupOS2(sTypoAscender=ASCENT, sTypoDescender=DESCENT, usWinAscent=ASCENT, usWinDescent=-DESCENT)
    fb.setupPost()
    fb.font.flavor = "woff"
    out = io.BytesIO()
    fb.font.save(out)
    return out.getvalue()


def main() -> None:
    data = base64.b64encode(build()).decode("ascii")
    chunks = "\n".join(f'    "{data[i : i + 100]}"' for i in range(0, len(data), 100))
    codes = sorted(GLYPHS)
    OUT.write_text(
        '"""Generated by tools/marker_font.py (do not edit): a web font of drawn status markers for the emoji the\n'
        'UI\'s messages use, so they never show as empty boxes where no emoji font is installed; see that script."""\n'
        "\n"
        f"CODE_POINTS = (\n{''.join(f'    0x{c:X},{chr(10)}' for c in codes)})\n"
        f"WOFF_BASE64 = (\n{chunks}\n)\n",
        encoding="utf-8",
    )
    print(f"{OUT}: {len(codes)} markers, {len(data) * 3 // 4} bytes of WOFF")


if __name__ == "__main__":
    main()
