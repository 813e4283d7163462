"""Exporting a comparison: the JSON record and the Markdown hold input, configs, replies and errors."""

from __future__ import annotations

import json

from llmplay.compare import (
    Comparison,
    export_markdown,
    export_payload,
)
from tests.compare.scripted import ScriptedEngine, column


# ---- export -----------------------------------------------------------------------------------------------
def test_export_payload_and_markdown_hold_input_configs_replies_and_errors():
    engine = ScriptedEngine({"a": ["Hi", "!"], "b": ["<boom>"]})
    comparison = Comparison([column("a"), column("b")], inputs={"message": "hi", "values": {}}).run(engine)
    payload = export_payload(comparison.snapshot())
    assert json.loads(json.dumps(payload)) == payload, "the payload is plain JSON"
    assert payload["format"] == "llmplay-comparison" and payload["input"]["message"] == "hi"
    a, b = payload["columns"]
    assert a["model"] == "a" and a["text"] == "Hi!" and a["config"]["params"]["max_new_tokens"] == 24
    assert a["request"] == {"prompt": "hi"} and a["tokens"] == 2 and a["error"] is None
    assert "kaboom" in b["error"]
    text = export_markdown(comparison.snapshot())
    assert "| 1 | a |" in text and "Hi!" in text and "⚠️ Error:" in text and "**Message:** hi" in text
