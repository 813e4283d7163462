"""Folding a comparison's events into per-column state: text, timing and the conversation."""

from __future__ import annotations

from llmplay.compare import (
    Comparison,
)
from tests.compare.scripted import ScriptedEngine, column


def test_comparison_tracks_text_timing_and_conversation():
    engine = ScriptedEngine({"a": ["Hello", " there"], "b": ["<boom>"]})
    before = [{"role": "user", "content": "earlier"}, {"role": "assistant", "content": "reply"}]
    cols = [column("a"), column("b")]
    comparison = Comparison(cols, [[], before], {"message": "hi"})
    snapshots = [c.snapshot() for c in comparison.stream(engine, every_s=0)]
    final = snapshots[-1]
    assert final["done"] and final["wall_s"] > 0
    a, b = final["columns"]
    assert a["text"] == "Hello there" and a["state"] == "done" and a["tokens"] == 2
    assert a["history"] == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello there"}]
    assert 0 < a["first_text_s"] <= a["finished_s"]
    assert b["state"] == "error" and "kaboom" in b["error"]
    assert b["history"] == before, "a failed turn leaves the conversation unchanged"
    assert any(s["columns"][0]["state"] == "generating" for s in snapshots[:-1]), "partial text is shown"
