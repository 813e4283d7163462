"""Passages for retrieval-augmented answers: a list-valued column rendered numbered, a template's ``documents``
option retrieving the nearest passages with the real MiniLM (a built-in sample or a saved dataset), and its
mistakes refused as template problems."""

from __future__ import annotations

import pandas as pd
import pytest

from llmplay.datasets import ColumnMapping, save_dataset
from llmplay.templates import contexts
from llmplay.templates.library import TemplateLibrary
from llmplay.templates.model import TemplateError, parse_template
from llmplay.templates.render import build_messages
from tests.conftest import ROOT

BASE = """\
name: rag
task: qa
variables:
  - question
  - name: contexts
    default: []
body: |-
  {% for p in contexts %}[{{ loop.index }}] {{ p }}
  {% endfor %}Q: {{ question }}
"""


def rag(extra: str = "") -> str:
    return BASE + extra


def last_user(template, values) -> str:
    return build_messages(template, values)[-1]["content"]


def test_a_list_column_is_rendered_as_numbered_passages_json_text_or_a_list():
    template = parse_template(rag())
    as_text = last_user(template, {"question": "Q1", "contexts": '["Alpha passage.", "Beta passage."]'})
    as_list = last_user(template, {"question": "Q1", "contexts": ["Alpha passage.", "Beta passage."]})
    assert as_text == as_list == "[1] Alpha passage.\n[2] Beta passage.\nQ: Q1"
    assert last_user(template, {"question": "Q1", "contexts": ""}) == "Q: Q1"  # an empty cell: no passages
    with pytest.raises(TemplateError, match="expects a JSON list"):
        last_user(template, {"question": "Q1", "contexts": "[not json"})


def test_passages_reads_lists_json_and_plain_text():
    assert contexts.passages('["a", "b", ""]') == ["a", "b"]
    assert contexts.passages(["a", None, 3]) == ["a", "3"]
    assert contexts.passages("one passage") == ["one passage"]
    assert contexts.passages(None) == contexts.passages("  ") == []


DOCS = "documents: {dataset: handbook, column: text, k: 2, query: question}\n"


def test_documents_fill_the_passages_with_the_nearest_of_a_built_in_sample():
    template = parse_template(rag(DOCS))
    text = last_user(template, {"question": "How long must a password be?"})
    first = text.splitlines()[0]
    assert first.startswith("[1] Passwords must be at least 14 characters long.")
    assert "[2] " in text and "[3] " not in text
    # a row that gives its own passages keeps them
    own = last_user(template, {"question": "How long must a password be?", "contexts": '["Given."]'})
    assert own == "[1] Given.\nQ: How long must a password be?"
    assert parse_template(template.to_yaml()).documents == template.documents  # written back as read


def test_the_shipped_rag_template_retrieves_the_obvious_passage():
    template = parse_template((ROOT / "prompts" / "rag-answer.yaml").read_text())
    text = last_user(template, {"question": "How much does breakfast cost in the canteen?"})
    assert "[1] The canteen serves a free vegetarian lunch" in text and "[3] " in text


def test_a_saved_dataset_is_a_document_set_of_the_library_s_data_dir(settings):
    df = pd.DataFrame({"body": ["Zebras sleep standing up in the Kalahari.", "Invoices are paid within 14 days."]})
    save_dataset(settings, "facts", df, ColumnMapping({}, None))
    TemplateLibrary.from_settings(settings)  # what every app and CLI does: documents are read from its data dir
    template = parse_template(rag("documents: {dataset: facts, column: body, k: 1}\n"))
    assert last_user(template, {"question": "When are invoices paid?"}) == (
        "[1] Invoices are paid within 14 days.\nQ: When are invoices paid?"
    )
    missing = parse_template(rag("documents: {dataset: facts, column: text, k: 1}\n"))
    with pytest.raises(TemplateError, match="documents.column 'text' is not in dataset 'facts' \\(columns: body\\)"):
        last_user(missing, {"question": "When?"})


def test_an_unknown_document_set_is_a_template_problem_naming_the_built_in_ones():
    template = parse_template(rag("documents: {dataset: nowhere-xyz, k: 2}\n"))
    with pytest.raises(TemplateError, match="'nowhere-xyz' is neither a saved dataset nor a built-in sample.*handbook"):
        last_user(template, {"question": "Anything?"})


@pytest.mark.parametrize(
    ("documents", "expected"),
    [
        ("documents: {dataset: handbook, k: 0}", "documents.k must be a whole number from 1 to 16; got 0"),
        ("documents: {dataset: handbook, k: many}", "documents.k must be a whole number"),
        ("documents: {column: text}", "documents.dataset is required"),
        (
            "documents: {dataset: handbook, top: 3}",
            "documents: unknown field(s) top; known: dataset, column, k, query, variable",
        ),
        ("documents: {dataset: handbook, variable: passages}", "documents.variable 'passages' is not declared"),
        ("documents: {dataset: handbook, query: topic}", "documents.query 'topic' is not a declared variable"),
        ("documents: handbook", "'documents' must be a mapping"),
    ],
)
def test_invalid_documents_are_refused_with_a_clear_message(documents, expected):
    with pytest.raises(TemplateError) as info:
        parse_template(rag(documents + "\n"))
    assert any(expected in p for p in info.value.problems), info.value.problems


def test_the_passages_variable_must_default_to_a_list():
    text = BASE.replace("  - name: contexts\n    default: []\n", "  - contexts\n") + DOCS
    with pytest.raises(TemplateError, match="holds retrieved passages: give it default: \\[\\]"):
        parse_template(text)
