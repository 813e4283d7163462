"""Structured output: a template's JSON Schema (parsed, checked, round-tripped) and the metrics on JSON answers
(valid_json, schema_valid, field_match, field_f1), on hand-made cases whose scores are worked out in the comments."""

from __future__ import annotations

import json

import pytest

from llmplay import datasets as ds
from llmplay.evaluation.config import MetricConfig
from llmplay.evaluation.metrics import get_metric
from llmplay.evaluation.scorer import ColumnReplies, ScoringError, metric_inputs, needs_reference
from llmplay.evaluation.structured import field_f1, field_match, schema_valid, values_equal
from llmplay.templates.model import TemplateError, parse_template
from tests.conftest import ROOT

SCHEMA = {
    "type": "object",
    "required": ["vendor", "total"],
    "properties": {"vendor": {"type": "string"}, "total": {"type": "number"}},
}

TEMPLATE = """\
name: receipt
task: extraction
variables: [text]
body: "Reply with JSON: {{ text }}"
output:
  json: true
  schema:
    type: object
    required: [vendor, total]
    properties:
      vendor: {type: string}
      total: {type: number}
metrics: [schema_valid, field_f1]
"""

REF = json.dumps({"vendor": "Copper Kettle", "total": 11.4, "currency": "EUR"})


# ---- the template's schema ----------------------------------------------------------------------------------


def test_a_template_declares_a_schema_and_it_round_trips_through_yaml():
    template = parse_template(TEMPLATE)
    assert template.output.json and template.output.schema == SCHEMA
    again = parse_template(template.to_yaml())
    assert again == template and again.output.schema == SCHEMA
    assert "schema:" in template.to_yaml() and "required:" in template.to_yaml()
    # No schema: nothing written, as before.
    plain = parse_template(TEMPLATE.split("  schema:")[0] + "metrics: [valid_json]\n")
    assert plain.output.schema is None and "schema" not in plain.to_yaml()


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        ("{type: objekt}", "output.schema is not a valid JSON Schema"),  # not a JSON Schema type
        ("{type: object, required: vendor}", "output.schema is not a valid JSON Schema (at required)"),
        ("{properties: {total: {minimum: ten}}}", "output.schema is not a valid JSON Schema (at properties/total"),
        ("[vendor, total]", "output.schema must be a mapping (a JSON Schema object); got list"),
        ("{const: 2025-01-01}", "output.schema must hold plain JSON values only"),  # YAML reads an unquoted date
    ],
)
def test_an_invalid_schema_is_listed_with_the_other_problems(schema, problem):
    text = TEMPLATE.replace("task: extraction", "task: extractionn").split("  schema:")[0]
    text += f"  schema: {schema}\n"
    with pytest.raises(TemplateError) as caught:
        parse_template(text)
    problems = caught.value.problems
    assert any(p.startswith(problem) for p in problems), problems
    assert any("unknown task 'extractionn'" in p for p in problems)  # every problem at once


def test_a_schema_needs_a_json_answer():
    with pytest.raises(TemplateError, match="output.schema describes a JSON answer: set output.json to true"):
        parse_template(TEMPLATE.replace("json: true", "json: false"))


def test_the_shipped_template_and_sample_fit_together():
    template = parse_template((ROOT / "prompts" / "extract-invoice.yaml").read_text(encoding="utf-8"))
    df, mapping, _ = ds.load_builtin("invoices")
    assert len(df) == 20 and mapping.reference == "fields" and list(mapping.variables) == ["text"]
    # Every reference is valid against the template's own schema, and the examples are too.
    references = list(df["fields"])
    assert schema_valid(references, template.output.schema)["score"] == 1.0
    assert schema_valid([e.output for e in template.examples], template.output.schema)["score"] == 1.0
    # ...and a perfect answer scores 1 on every field metric.
    assert field_match(references, references)["score"] == field_f1(references, references)["score"] == 1.0


# ---- the metrics --------------------------------------------------------------------------------------------


def test_valid_json_is_the_json_assertion_on_the_parsed_answer():
    # "valid_json" already is "the answer parses as JSON": no separate json_valid metric.
    result = get_metric("valid_json").compute(['{"a": 1}', "[1, 2]", '{"a": 1', "not json", None])
    assert result.per_row == [1.0, 1.0, 0.0, 0.0, 0.0] and result.row_mean and result.score == pytest.approx(0.4)


def test_schema_valid_scores_each_answer_and_says_why_it_failed():
    answers = [
        '{"vendor": "A", "total": 3}',  # valid (an integer is a number)
        '{"vendor": "A"}',  # required total missing
        '{"vendor": "A", "total": "3.00"}',  # total has the wrong type
        '{"vendor": "A", "total": 3',  # not JSON
        None,  # no answer (unparseable by the template): a 0, not dropped
        '["vendor", "total"]',  # JSON, but not an object
    ]
    result = get_metric("schema_valid").compute(answers, schema=SCHEMA)
    assert result.per_row == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0] and result.row_mean
    assert result.score == pytest.approx(1 / 6)
    failures = result.details["failures"]
    assert "'total' is a required property" in failures[1]
    assert failures[2].startswith("total: '3.00' is not of type 'number'")
    assert failures[3] == "not valid JSON" and failures[4] == "no answer" and "not of type 'object'" in failures[5]


def test_values_are_compared_normalised():
    assert values_equal("  Copper   KETTLE ", "copper kettle")
    assert values_equal(11.4, 11.40) and values_equal(12, 12.0) and values_equal("12.00", 12)
    assert values_equal({"a": [1, " X "]}, {"a": [1.0, "x"]})
    assert not values_equal(True, 1) and not values_equal(0, False) and not values_equal(None, "")
    assert not values_equal("12 EUR", 12) and not values_equal([1, 2], [2, 1]) and not values_equal(11.41, 11.4)


def test_field_match_is_the_share_of_reference_fields_right():
    answers = [
        '{"vendor": "copper  kettle", "total": 11.40, "currency": "eur"}',  # 3/3 after normalisation
        '{"vendor": "Copper Kettle", "total": 12, "currency": "EUR", "tip": 1}',  # total wrong: 2/3; extra is free
        '{"vendor": "Copper Kettle"}',  # 1/3
        "The total is 11.40",  # not JSON: 0
        None,  # no answer: 0
    ]
    result = get_metric("field_match").compute(answers, [REF] * 5)
    assert result.per_row == pytest.approx([1.0, 2 / 3, 1 / 3, 0.0, 0.0]) and result.row_mean
    assert result.score == pytest.approx((1 + 2 / 3 + 1 / 3) / 5)
    # Per field, the share of rows right: vendor in rows 1-3, total in row 1, currency in rows 1-2.
    assert result.details["fields"] == pytest.approx({"vendor": 3 / 5, "total": 1 / 5, "currency": 2 / 5})
    assert result.details["unparseable"] == 2


def test_field_f1_charges_extra_fields_to_precision():
    answers = [
        '{"vendor": "Copper Kettle", "total": 11.4, "currency": "EUR"}',  # tp 3 of 3 and 3: F1 1
        '{"vendor": "Copper Kettle", "total": 11.4, "currency": "EUR", "tip": 1, "table": 4}',  # 2*3/(5+3) = 0.75
        '{"vendor": "Copper Kettle"}',  # tp 1, 1 given, 3 wanted: 2*1/(1+3) = 0.5
        '{"vendor": "Other", "total": 9}',  # tp 0: 0
        "{}",  # an empty object: 0
        "oops",  # not JSON: 0 (and counts as missing all 3 reference pairs in the pooled recall)
    ]
    result = get_metric("field_f1").compute(answers, [REF] * 6)
    assert result.per_row == pytest.approx([1.0, 0.75, 0.5, 0.0, 0.0, 0.0]) and result.row_mean
    # Pooled over rows: tp 3+3+1 = 7; given 3+5+1+2+0 = 11; wanted 3*6 = 18.
    assert result.details["precision"] == pytest.approx(7 / 11) and result.details["recall"] == pytest.approx(7 / 18)
    assert result.details["micro_f1"] == pytest.approx(14 / 29) and result.details["unparseable"] == 1
    # field_match does not see the extra fields: row 2 is 3/3 there.
    assert get_metric("field_match").compute(answers[1:2], [REF]).score == 1.0


def test_a_reference_that_is_not_a_json_object_is_an_error_not_a_zero():
    with pytest.raises(Exception, match="row 2: the reference must be a JSON object"):
        get_metric("field_match").compute(['{"a": 1}', '{"a": 1}'], ['{"a": 1}', "positive"])


def test_field_metric_intervals_bootstrap_the_rows():
    result, interval = get_metric("field_f1").interval(['{"vendor": "Copper Kettle"}', "{}"] * 5, [REF] * 10)
    assert interval.estimate == pytest.approx(0.25) and interval.low < 0.25 < interval.high and interval.n == 10


# ---- what the scorer passes -----------------------------------------------------------------------------------


def _replies(template_text: str, answers: list, references: list | None) -> ColumnReplies:
    template = parse_template(template_text)
    return ColumnReplies(template, list(answers), list(answers), [{} for _ in answers], references)


def test_the_scorer_passes_the_template_schema_and_needs_no_reference():
    assert not needs_reference(MetricConfig("schema_valid"))
    assert needs_reference(MetricConfig("field_match")) and needs_reference(MetricConfig("field_f1"))
    preds, refs, kwargs = metric_inputs(MetricConfig("schema_valid"), _replies(TEMPLATE, ['{"vendor": "A"}'], None))
    assert preds == ['{"vendor": "A"}'] and refs is None and kwargs == {"schema": SCHEMA}
    # A mapping in the reference column (a JSON dataset) reaches the field metrics as JSON text.
    reference = {"vendor": "A", "total": 1}
    _, refs, _ = metric_inputs(MetricConfig("field_f1"), _replies(TEMPLATE, ['{"vendor": "A"}'], [reference]))
    assert refs == [json.dumps(reference)]


def test_schema_valid_on_a_template_without_a_schema_is_a_clear_error():
    no_schema = TEMPLATE.split("  schema:")[0] + "metrics: [valid_json]\n"
    with pytest.raises(ScoringError, match="template 'receipt' declares none: add output: {json: true, schema"):
        metric_inputs(MetricConfig("schema_valid"), _replies(no_schema, ['{"a": 1}'], None))
