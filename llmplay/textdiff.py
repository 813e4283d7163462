"""Word-level differences between two texts, for the evaluation grid and the Compare tab.

Tokens are words with their trailing whitespace, so joining the pieces of either side gives that side back
exactly; HTML output escapes the text and marks removed words with <del> and added words with <ins>.
"""

from __future__ import annotations

import difflib
import html
import re
from dataclasses import dataclass
from typing import Literal

_TOKEN_RE = re.compile(r"\s+|\w+|[^\w\s]")

Op = Literal["equal", "delete", "insert"]


@dataclass(frozen=True)
class Piece:
    op: Op
    text: str


def tokens(text: str) -> list[str]:
    return _TOKEN_RE.findall(text or "")


def word_diff(a: str, b: str) -> list[Piece]:
    """Pieces that turn ``a`` into ``b``: equal runs, deletions from ``a`` and insertions from ``b``."""
    ta, tb = tokens(a), tokens(b)
    pieces: list[Piece] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, ta, tb, autojunk=False).get_opcodes():
        if tag == "equal":
            pieces.append(Piece("equal", "".join(ta[i1:i2])))
            continue
        if tag in ("replace", "delete"):
            pieces.append(Piece("delete", "".join(ta[i1:i2])))
        if tag in ("replace", "insert"):
            pieces.append(Piece("insert", "".join(tb[j1:j2])))
    return pieces


def side(pieces: list[Piece], which: Literal["a", "b"]) -> str:
    """One side back from the pieces (a = equal + deleted, b = equal + inserted)."""
    skip = "insert" if which == "a" else "delete"
    return "".join(p.text for p in pieces if p.op != skip)


def similarity(a: str, b: str) -> float:
    """Share of words the two texts have in common (1.0 = identical word sequences)."""
    ta, tb = [t for t in tokens(a) if not t.isspace()], [t for t in tokens(b) if not t.isspace()]
    if not ta and not tb:
        return 1.0
    return difflib.SequenceMatcher(None, ta, tb, autojunk=False).ratio()


def diff_html(a: str, b: str) -> str:
    """Inline HTML: removed words struck through in red, added words in green; newlines kept."""
    out = []
    for piece in word_diff(a, b):
        text = html.escape(piece.text).replace("\n", "<br>")
        if piece.op == "equal":
            out.append(text)
        elif piece.op == "delete":
            out.append(f'<del style="background:#fdd;color:#900">{text}</del>')
        else:
            out.append(f'<ins style="background:#dfd;color:#060;text-decoration:none">{text}</ins>')
    return f'<div class="llmplay-diff" style="white-space:pre-wrap">{"".join(out)}</div>'


_LINE_STYLES = {
    "+": "background:#e6ffec;color:#055d20",
    "-": "background:#ffebe9;color:#82071e",
    "@": "background:#ddf4ff;color:#0a3069",
    " ": "",
}


def unified_diff_html(diff: str, empty: str = "(no differences)") -> str:
    """A unified diff as HTML: added lines green, removed lines red, hunk headers blue, file headers bold; every
    line escaped (a template's text is shown, never run)."""
    lines = (diff or "").splitlines()
    if not lines:
        return f'<div class="llmplay-udiff"><p>{html.escape(empty)}</p></div>'
    out = []
    for line in lines:
        text = html.escape(line) or "&nbsp;"
        if line.startswith(("+++", "---")):
            out.append(f'<div class="udiff-file" style="font-weight:bold">{text}</div>')
            continue
        kind = {"+": "add", "-": "del", "@": "hunk"}.get(line[:1], "same")
        style = _LINE_STYLES.get(line[:1], "")
        out.append(f'<div class="udiff-{kind}" style="{style}">{text}</div>')
    body = "".join(out)
    return (
        '<div class="llmplay-udiff" style="font-family:var(--font-mono,monospace);font-size:0.85em;'
        f'white-space:pre-wrap;overflow-x:auto">{body}</div>'
    )
