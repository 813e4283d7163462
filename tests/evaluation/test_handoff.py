"""From an evaluation row to Compare columns: a real (tiny) run on the chat model, then its row as Compare
columns and values, rerun through the Compare core: greedy, so the replies repeat the run's stored outputs."""

from __future__ import annotations

import pandas as pd
import pytest

from llmplay.compare import Comparison, prepare_column
from llmplay.datasets import ColumnMapping, save_dataset
from llmplay.engine import GenerationParams
from llmplay.errors import InvalidRequestError
from llmplay.evaluation.config import ColumnConfig, RunConfig
from llmplay.evaluation.handoff import row_for_compare
from llmplay.store import connect
from llmplay.templates import TemplateLibrary, load_template
from tests.conftest import CHAT_MODEL

NAME = "handoff-sentiment"
TEMPLATE = """\
name: handoff-sentiment
description: A short sentiment prompt for the handoff tests.
task: classification
variables:
  - name: text
body: |-
  {body}
output:
  labels: [positive, negative, neutral]
"""
OLD_BODY = "{{ text }}\n  Sentiment (positive, negative or neutral):"
NEW_BODY = "Sentence: {{ text }}\n  Is this news positive, negative or neutral? Answer with one word."
ROWS = [
    ("Harbourline Shipping doubled its quarterly profit.", "positive"),
    ("Quillon Chemicals will lay off 600 workers.", "negative"),
    ("The meeting will take place in Oslo on 3 April.", "neutral"),
]


def _params(tokens: int, **kw) -> GenerationParams:
    return GenerationParams(max_new_tokens=tokens, **kw)


@pytest.fixture(scope="module")
def library(engine, tmp_path_factory) -> TemplateLibrary:
    """Version 1 and 2 of one template: the run uses both; the file holds version 2."""
    lib = TemplateLibrary(tmp_path_factory.mktemp("handoff") / "prompts", engine.settings.db_path)
    lib.folder.mkdir(parents=True, exist_ok=True)
    for body in (OLD_BODY, NEW_BODY):
        lib.save(TEMPLATE.format(body=body), message="handoff test")
    return lib


@pytest.fixture(scope="module")
def run_id(engine, library) -> int:
    """Five columns (Compare shows four); the dataset's ``sentence`` column fills the ``text`` variable."""
    from llmplay.evaluation.runner import EvalRunner

    df = pd.DataFrame(ROWS, columns=["sentence", "label"], dtype=object)
    save_dataset(engine.settings, "handoff-rows", df, ColumnMapping({"text": "sentence"}, "label"), source="test")
    old = library.versions(NAME)[0].number
    columns = (
        ColumnConfig(NAME, CHAT_MODEL, params=_params(4), template_version=old),
        ColumnConfig(NAME, CHAT_MODEL, params=_params(4)),
        ColumnConfig(NAME, CHAT_MODEL, params=_params(3, stop=("\n",), repetition_penalty=1.1)),
        ColumnConfig(NAME, CHAT_MODEL, params=_params(4, top_k=5), mode="likelihood"),
        ColumnConfig(NAME, CHAT_MODEL, params=_params(2)),
    )
    return EvalRunner(engine, library).run(RunConfig(dataset="handoff-rows", columns=columns))


def _stored_outputs(engine, run_id: int, row: int) -> list[str]:
    """The run's replies for one row, read straight from SQLite, in column order."""
    with connect(engine.settings.db_path) as db:
        rows = db.query(
            "select o.text from eval_cells c join eval_outputs o on o.id = c.output_id "
            "where c.run_id = ? and c.row_index = ? order by c.column_index",
            [run_id, row],
        )
        return [r["text"] for r in rows]


def test_a_row_becomes_the_runs_first_four_columns_and_the_rows_values(engine, library, run_id):
    handoff = row_for_compare(engine.settings, library, run_id, 1)

    assert handoff.values == {"text": ROWS[1][0]}, "the dataset column mapped to the template variable"
    assert [c.model for c in handoff.columns] == [CHAT_MODEL] * 4
    old = library.versions(NAME)[0].number
    assert [c.template for c in handoff.columns] == [f"{NAME}@v{old}", NAME, NAME, NAME], "v1 is not current"
    assert [c.params for c in handoff.columns] == [
        _params(4),
        _params(4),
        _params(3, stop=("\n",), repetition_penalty=1.1),
        _params(4, top_k=5),
    ]
    assert handoff.outputs == tuple(_stored_outputs(engine, run_id, 1)[:4])
    assert len(handoff.titles) == 4
    assert any("5 columns" in note and "up to 4" in note for note in handoff.notes), handoff.notes
    assert any(note.startswith("Column 4 picked the most likely label") for note in handoff.notes), handoff.notes
    # the run decoded on transformers (a column penalises repetition, which ONNX batches do not), Compare streams on
    # the settings' auto (onnx int8): the note says the replies can differ
    decoded = [n for n in handoff.notes if "decoded on transformers float32 in the run" in n]
    assert engine.settings.backend == "auto" and len(decoded) == 4, handoff.notes
    assert "Compare streams on onnx int8" in decoded[0]


def test_rerunning_the_row_through_compare_repeats_the_runs_greedy_replies(engine, library, run_id):
    handoff = row_for_compare(engine.settings, library, run_id, 0)
    old_template, _ = load_template(library, handoff.columns[0].template)
    assert "Sentiment (positive" in old_template.body, "column 1 renders the version the run used"

    prepared = []
    for config in handoff.columns[:3]:  # column 4 chose a label by likelihood: nothing generated to repeat
        template, version = load_template(library, config.template)
        prepared.append(prepare_column(engine, config, [], "", template=template, values=handoff.values))
    replies = [run.result.text for run in Comparison(prepared).run(engine).runs]
    assert replies == list(handoff.outputs[:3]) == _stored_outputs(engine, run_id, 0)[:3]


def test_a_missing_row_or_run_is_refused_with_a_clear_message(engine, library, run_id):
    with pytest.raises(InvalidRequestError, match=r"rows 0 to 2; there is no row 3"):
        row_for_compare(engine.settings, library, run_id, 3)
    with pytest.raises(InvalidRequestError, match="No evaluation run #999999"):
        row_for_compare(engine.settings, library, 999_999, 0)
