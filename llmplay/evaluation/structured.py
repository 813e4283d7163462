"""Structured output: JSON answers checked against a template's JSON Schema and compared field by field with a
reference object. The pure functions behind the ``schema_valid``, ``field_match`` and ``field_f1`` metric modules
(``valid_json`` is the assertion in ``metrics/scoring.py``).

An answer is read with ``json.loads`` as it is: with ``output: {json: true}`` the template's parser has already cut
the first JSON value out of the reply (prose and code fences around it are fine). An answer that does not parse,
or is not a JSON object where fields are compared, scores 0 on its row: it is never dropped.

Field values are compared normalised: text ignoring case and runs of whitespace, numbers by value (``12``,
``12.0`` and ``"12.00"`` are equal; ``true`` is not ``1``), lists in order and objects key by key, recursively.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

from llmplay.templates.model import schema_problem

_NUMBER_TEXT = re.compile(r"^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$")


# ---- reading ---------------------------------------------------------------------------------------------


def parse_json(text: str | None) -> tuple[bool, Any]:
    """(parsed?, value) of an answer; (False, None) for no answer or text that is not JSON."""
    if text is None:
        return False, None
    try:
        return True, json.loads(text)
    except ValueError:
        return False, None


def answer_object(text: str | None) -> dict | None:
    """The answer as a JSON object, or None (no answer, not JSON, or JSON that is not an object)."""
    ok, value = parse_json(text)
    return value if ok and isinstance(value, dict) else None


def reference_object(value: Any, row: int) -> dict:
    """A row's reference: a JSON object (as text, or a mapping); anything else is the dataset's mistake."""
    if isinstance(value, dict):
        return value
    ok, parsed = parse_json(value if isinstance(value, str) else None)
    if not ok or not isinstance(parsed, dict):
        shown = str(value)[:60]
        raise ValueError(f'row {row + 1}: the reference must be a JSON object such as {{"total": 12.5}}; got {shown!r}')
    return parsed


# ---- comparing -------------------------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and _NUMBER_TEXT.match(value.strip()):
        return float(value.strip())
    return None


def values_equal(got: Any, want: Any) -> bool:
    """Two JSON values equal after normalisation (see the module's docstring)."""
    a, b = _number(got), _number(want)
    if a is not None and b is not None:
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(got, str) and isinstance(want, str):
        return " ".join(got.split()).casefold() == " ".join(want.split()).casefold()
    if isinstance(got, dict) and isinstance(want, dict):
        return got.keys() == want.keys() and all(values_equal(got[k], want[k]) for k in want)
    if isinstance(got, list) and isinstance(want, list):
        return len(got) == len(want) and all(values_equal(x, y) for x, y in zip(got, want))
    if isinstance(got, bool) or isinstance(want, bool) or got is None or want is None:
        return got is want
    return False


def matched_fields(answer: dict | None, reference: dict) -> list[str]:
    """The reference's top-level fields the answer gives with an equal value."""
    if answer is None:
        return []
    return [k for k, v in reference.items() if k in answer and values_equal(answer[k], v)]


# ---- metrics ---------------------------------------------------------------------------------------------


def field_match(predictions: Sequence[str | None], references: Sequence[Any]) -> dict[str, Any]:
    """Per row, the share of the reference's top-level fields the answer got right (extra fields cost
    nothing); details: each field's share of rows right, and how many answers were not a JSON object."""
    rows, right, seen, unparseable = [], {}, {}, 0
    for i, (prediction, reference) in enumerate(zip(predictions, references)):
        want, got = reference_object(reference, i), answer_object(prediction)
        unparseable += got is None
        hits = matched_fields(got, want)
        rows.append(len(hits) / len(want) if want else float(got is not None))
        for key in want:
            seen[key] = seen.get(key, 0) + 1
            right[key] = right.get(key, 0) + (key in hits)
    fields = {k: right[k] / seen[k] for k in seen}
    return {
        "score": sum(rows) / len(rows),
        "per_row": rows,
        "row_mean": True,
        "fields": fields,
        "unparseable": unparseable,
    }


def field_f1(predictions: Sequence[str | None], references: Sequence[Any]) -> dict[str, Any]:
    """Per row, F1 over (field, value) pairs: a pair is right when the answer gives the reference's value for
    that field; extra fields cost precision, missing or wrong ones recall. Details: precision and recall over
    all rows' pairs pooled (micro), and how many answers were not a JSON object."""
    rows, tp_all, pred_all, gold_all, unparseable = [], 0, 0, 0, 0
    for i, (prediction, reference) in enumerate(zip(predictions, references)):
        want, got = reference_object(reference, i), answer_object(prediction)
        unparseable += got is None
        if got is None:
            rows.append(0.0)
            gold_all += len(want)
            continue
        tp = len(matched_fields(got, want))
        rows.append(2 * tp / (len(got) + len(want)) if got or want else 1.0)
        tp_all, pred_all, gold_all = tp_all + tp, pred_all + len(got), gold_all + len(want)
    precision = tp_all / pred_all if pred_all else 0.0
    recall = tp_all / gold_all if gold_all else 0.0
    micro = 2 * tp_all / (pred_all + gold_all) if pred_all + gold_all else 0.0
    return {
        "score": sum(rows) / len(rows),
        "per_row": rows,
        "row_mean": True,
        "precision": precision,
        "recall": recall,
        "micro_f1": micro,
        "unparseable": unparseable,
    }


def schema_valid(predictions: Sequence[str | None], schema: dict) -> dict[str, Any]:
    """1 per answer that is JSON and valid against ``schema``; failures says why each other row failed."""
    problem = schema_problem(schema)
    if problem:
        raise ValueError(f"the schema {problem}")
    from jsonschema import validators
    from jsonschema.exceptions import best_match

    validator = validators.validator_for(schema)(schema)
    rows, failures = [], {}
    for i, prediction in enumerate(predictions):
        ok, value = parse_json(prediction)
        error = best_match(validator.iter_errors(value)) if ok else None
        if not ok:
            failures[i] = "no answer" if prediction is None else "not valid JSON"
        elif error is not None:
            where = "/".join(str(p) for p in error.absolute_path)
            failures[i] = f"{where + ': ' if where else ''}{error.message}"
        rows.append(float(i not in failures))
    return {"score": sum(rows) / len(rows), "per_row": rows, "row_mean": True, "failures": failures}
