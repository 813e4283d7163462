from llmplay.textdiff import diff_html, side, similarity, word_diff


def test_pieces_rebuild_both_sides_exactly():
    a = "The cat sat on the mat.\nIt was happy."
    b = "The dog sat on a mat.\nIt was very happy!"
    pieces = word_diff(a, b)
    assert side(pieces, "a") == a
    assert side(pieces, "b") == b
    deleted = {p.text for p in pieces if p.op == "delete"}
    inserted = {p.text for p in pieces if p.op == "insert"}
    assert "cat" in deleted and "dog" in inserted
    assert any("very" in t for t in inserted)


def test_identical_texts_have_no_changes():
    pieces = word_diff("same words here", "same words here")
    assert [p.op for p in pieces] == ["equal"]
    assert similarity("same words here", "same words here") == 1.0
    assert similarity("", "") == 1.0
    assert similarity("a b c d", "w x y z") == 0.0


def test_html_escapes_and_marks_changes():
    out = diff_html("x < y", "x > y")
    assert "<del" in out and "&lt;" in out and "&gt;" in out and "<ins" in out
    assert "<script>" not in diff_html("<script>", "ok")


def test_unified_diff_html_colours_added_and_removed_lines_and_escapes_them():
    from llmplay.textdiff import unified_diff_html

    diff = '--- t v1\n+++ t v2\n@@ -1,2 +1,2 @@\n keep <b>me</b>\n-old <script>alert(1)</script>\n+new & "quoted"\n'
    out = unified_diff_html(diff)
    assert '<div class="udiff-del" style="background:#ffebe9;color:#82071e">' in out
    assert '<div class="udiff-add" style="background:#e6ffec;color:#055d20">+new &amp; &quot;quoted&quot;</div>' in out
    assert '<div class="udiff-hunk"' in out and '<div class="udiff-file"' in out
    assert "<script>" not in out and "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert "<b>me</b>" not in out and "&lt;b&gt;me&lt;/b&gt;" in out, "unchanged lines are escaped too"
    assert "(no differences)" in unified_diff_html("")
