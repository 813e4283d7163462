"""The Loop tab's empty states: with no line, or a line with no updates, the tab says what to do, and each
chart keeps its title with a sentence of what fills it in."""

from __future__ import annotations

from llmplay.ui.tabs.loop import view


def test_no_line_and_no_updates_each_say_what_to_do():
    assert "Create a line" in view.empty_note(None, False) and "Run an update now" in view.empty_note(None, False)
    assert "No updates of **fpb** yet" in view.empty_note("fpb", False)
    assert view.empty_note("fpb", True) == "" and view.empty_note("fpb", False, failed=True) == ""


def test_every_chart_has_a_title_and_an_empty_sentence():
    for chart, (title, _) in view.CHARTS.items():
        picked, unpicked, drawn = (
            view.chart_heading(chart, n, e) for n, e in (("fpb", True), (None, True), ("fpb", False))
        )
        assert picked.startswith(f"**{title}**") and "Nothing to draw yet" in picked
        assert "pick one above" in unpicked and drawn == f"**{title}**"
    assert "Run an update now" in view.chart_heading("probe_task", "fpb", True)
    assert "Labeling" in view.chart_heading("volume", "fpb", True)
