"""A comparison's replies as feedback: a preference pair, a correction, and clear refusals."""

from __future__ import annotations

import json

import pytest

from llmplay.compare import (
    Column,
    ColumnConfig,
    Comparison,
    correction_from_comparison,
    preference_from_comparison,
)
from llmplay.compare.results import save_comparison
from llmplay.engine import GenerationRequest
from llmplay.errors import InvalidRequestError
from llmplay.feedback.provenance import Sender
from llmplay.feedback.store import list_items, list_queues, list_responses
from llmplay.store import connect
from tests.compare.scripted import GREEDY, ScriptedEngine, column


# ---- feedback ---------------------------------------------------------------------------------------------
def _finished(columns: list[Column], scripts: dict[str, list[str]]) -> dict:
    return Comparison(columns, inputs={"message": "hi"}).run(ScriptedEngine(scripts, pause_s=0)).snapshot()


ANA, LOCAL = Sender(" ana ", "labeler"), Sender("", "admin")  # LOCAL: single-user mode, everyone is admin


def test_two_replies_become_a_preference_pair_and_one_a_correction(tmp_path):
    chat = Column(
        ColumnConfig("a", GREEDY, adapter="/loras/a", template_version_id=7),
        GenerationRequest.of([{"role": "user", "content": "hi"}], GREEDY),
    )
    comparison = _finished([chat, column("b")], {"a": ["Hello", "!"], "b": ["hi hi"]})
    with connect(tmp_path / "db.sqlite") as db:
        comparison = save_comparison(db, comparison, "ana")
        pair = preference_from_comparison(db, comparison, 1, 2, ANA)
        fix = correction_from_comparison(db, comparison, 2, "Hello! How can I help?", LOCAL)
        again = preference_from_comparison(db, comparison, 1, 2, ANA)  # a double click stores it once
        pairs, fixes = list_items(db, "preferences"), list_items(db, "inbox")
        answers = list_responses(db, queue="preferences") + list_responses(db, queue="inbox")

    assert [i.id for i in pairs] == [pair.item.id] and [i.id for i in fixes] == [fix.item.id]
    assert again.item.id == pair.item.id and not again.created and len(answers) == 2
    item = pair.item
    assert (pair.kind, item.source, item.output, item.output_b) == ("preference", "compare", "Hello!", "hi hi")
    assert (item.model, item.adapter, item.model_b, item.adapter_b) == ("a", "/loras/a", "b", None)
    assert item.template_version_id == 7 and item.prompt == [{"role": "user", "content": "hi"}], "what a was sent"
    assert (pair.response.labeler, pair.response.value, pair.response.status) == ("ana", "a", "submitted")
    assert (fix.kind, fix.item.output, fix.item.model, fix.response.value, fix.response.labeler) == (
        "correction",
        "hi hi",
        "b",
        "Hello! How can I help?",
        "anonymous",
    )
    assert fix.item.prompt == "hi", "a base model's raw text is what it was sent"


def test_feedback_is_refused_with_a_clear_message_and_nothing_is_stored(tmp_path):
    other = Column(ColumnConfig("d", GREEDY), GenerationRequest.of("something else", GREEDY))
    scripts = {"a": ["Hello"], "b": ["Hi"], "c": ["<boom>"], "d": ["Yes"], "e": []}
    comparison = _finished([column("a"), column("b"), column("c"), other, column("e")], scripts)
    running = json.loads(json.dumps(comparison))
    running["columns"][1]["state"] = "generating"
    with connect(tmp_path / "db.sqlite") as db:
        comparison, running = save_comparison(db, comparison, "ana"), save_comparison(db, running, "ana")
    cases = [
        (lambda db: preference_from_comparison(db, {}, 1, 2, LOCAL), "There is no comparison .* of yours"),
        (lambda db: correction_from_comparison(db, None, 1, "x", LOCAL), "There is no comparison None of yours"),
        (lambda db: preference_from_comparison(db, comparison, 2, 2, ANA), "two different columns"),
        (lambda db: preference_from_comparison(db, comparison, 1, 3, ANA), r"Column 3 \(c\) failed.*kaboom"),
        (lambda db: preference_from_comparison(db, comparison, 1, 6, ANA), "columns 1 to 5; there is no column 6"),
        (lambda db: preference_from_comparison(db, comparison, 1, 4, ANA), "Columns 1 and 4 were sent different"),
        (lambda db: preference_from_comparison(db, comparison, 5, 1, ANA), "Column 5's reply is empty"),
        (lambda db: preference_from_comparison(db, running, 1, 2, ANA), r"Column 2 \(b\) has not finished"),
        (lambda db: correction_from_comparison(db, comparison, 3, "Hello", ANA), "failed"),
        (lambda db: correction_from_comparison(db, comparison, 1, "  ", ANA), "Write the correct answer first"),
    ]
    with connect(tmp_path / "db.sqlite") as db:
        for send, message in cases:
            with pytest.raises(InvalidRequestError, match=message):
                send(db)
        assert all(not list_items(db, q) for q in list_queues(db)), "a refused send stores no item"
        # A correction of an empty reply is fine: it says what the model should have said.
        assert correction_from_comparison(db, comparison, 5, "Hello", ANA).item.output == ""


def test_one_template_version_on_a_chat_and_a_base_model_is_one_prompt(tmp_path):
    """Rendered for a chat model (messages) and a base model (one text), it is still one input: a pair."""
    chat = Column(
        ColumnConfig("a", GREEDY, template="t", template_version_id=3),
        GenerationRequest.of([{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}], GREEDY),
    )
    base = Column(ColumnConfig("b", GREEDY, template="t", template_version_id=3), GenerationRequest.of("S\n\nQ"))
    comparison = _finished([chat, base], {"a": ["yes"], "b": ["no"]})
    with connect(tmp_path / "db.sqlite") as db:
        pair = preference_from_comparison(db, save_comparison(db, comparison, "ana"), 2, 1, ANA).item
    assert (pair.prompt, pair.output, pair.output_b, pair.template_version_id) == ("S\n\nQ", "no", "yes", 3)
    assert pair.template == "t", "the template's name, without a version suffix"
