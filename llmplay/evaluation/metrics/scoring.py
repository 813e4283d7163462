"""Pure scoring functions behind llmplay's metric modules.

The ``evaluate`` modules in ``modules/`` are thin wrappers around these, so the logic is importable,
testable and reusable (e.g. by bootstrap resampling) without going through ``evaluate.load``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

# ---- text ----------------------------------------------------------------------------------------------


def normalise(text: str | None, ignore_case: bool = False) -> str | None:
    if text is None:
        return None
    text = " ".join(str(text).split())  # strip ends and collapse inner whitespace runs
    return text.casefold() if ignore_case else text


def exact_match(predictions: Sequence[str | None], references: Sequence[str], ignore_case: bool = False) -> list[float]:
    return [
        float(p is not None and normalise(p, ignore_case) == normalise(r, ignore_case))
        for p, r in zip(predictions, references)
    ]


# ---- classification ------------------------------------------------------------------------------------


def classification_rows(predictions: Sequence[str | None], references: Sequence[str]) -> list[float]:
    """1.0 where the parsed label equals the reference; an unparseable answer (None) is a wrong answer."""
    return [float(p is not None and p == r) for p, r in zip(predictions, references)]


def macro_f1(
    predictions: Sequence[str | None], references: Sequence[str], labels: Sequence[str] | None = None
) -> dict[str, Any]:
    """Macro-averaged F1 over the labels; None predictions miss their reference class (a false negative)
    without being a false positive for any real class."""
    classes = list(labels) if labels else sorted({r for r in references} | {p for p in predictions if p is not None})
    per_class: dict[str, float] = {}
    for label in classes:
        tp = sum(p == label and r == label for p, r in zip(predictions, references))
        fp = sum(p == label and r != label for p, r in zip(predictions, references))
        fn = sum(p != label and r == label for p, r in zip(predictions, references))
        per_class[label] = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    return {"macro_f1": sum(per_class.values()) / len(per_class) if per_class else 0.0, "per_class_f1": per_class}


# ---- numbers -------------------------------------------------------------------------------------------

# A signed number with optional thousands separators ("1,234,567") and decimals; currency signs and
# percent signs around it are simply not part of the match.
_NUMBER_RE = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\.\d+")


def extract_number(text: str | None) -> float | None:
    """The last number in a text ("The answer is $1,234.50." -> 1234.5), or None when it has none."""
    if text is None:
        return None
    matches = _NUMBER_RE.findall(str(text))
    return float(matches[-1].replace(",", "")) if matches else None


def numeric_match(
    predictions: Sequence[str | None], references: Sequence[str | float], rel_tol: float = 1e-6, abs_tol: float = 1e-6
) -> list[float]:
    rows = []
    for prediction, reference in zip(predictions, references):
        got = extract_number(prediction)
        want = reference if isinstance(reference, int | float) else extract_number(reference)
        rows.append(
            float(got is not None and want is not None and math.isclose(got, want, rel_tol=rel_tol, abs_tol=abs_tol))
        )
    return rows


# ---- assertions ----------------------------------------------------------------------------------------

CHECKS = ("contains", "icontains", "regex", "json", "json_schema", "length")


def check(
    output: str | None,
    kind: str,
    value: Any = None,
    min_length: int | None = None,
    max_length: int | None = None,
) -> tuple[bool, str]:
    """Run one assertion on one output; returns (passed, why it failed or "")."""
    passed, reason = _check(output, kind, value, min_length, max_length)
    return passed, "" if passed else reason


def _check(
    output: str | None, kind: str, value: Any, min_length: int | None, max_length: int | None
) -> tuple[bool, str]:
    if output is None:
        return False, "no output"
    if kind == "contains":
        return (str(value) in output), f"does not contain {value!r}"
    if kind == "icontains":
        return (str(value).casefold() in output.casefold()), f"does not contain {value!r} (ignoring case)"
    if kind == "regex":
        try:
            return (re.search(str(value), output) is not None), f"does not match /{value}/"
        except re.error as exc:
            return False, f"invalid regex /{value}/: {exc}"
    if kind in ("json", "json_schema"):
        try:
            parsed = json.loads(output)
        except ValueError as exc:
            return False, f"not valid JSON: {exc}"
        return (True, "") if kind == "json" else _schema_check(parsed, value)
    if kind == "length":
        n = len(output)
        if min_length is not None and n < min_length:
            return False, f"{n} characters, fewer than the minimum {min_length}"
        if max_length is not None and n > max_length:
            return False, f"{n} characters, more than the maximum {max_length}"
        return True, ""
    raise ValueError(f"unknown assertion {kind!r}; known: {', '.join(CHECKS)}")


def _schema_check(parsed: Any, schema: Any) -> tuple[bool, str]:
    try:
        import jsonschema  # a dependency; imported here so other metrics never load it
    except ImportError:
        return False, "JSON schema checks need the 'jsonschema' package (pip install jsonschema)"
    if isinstance(schema, str):
        schema = json.loads(schema)
    try:
        jsonschema.validate(parsed, schema)
    except jsonschema.ValidationError as exc:
        return False, f"does not match the schema: {exc.message}"
    return True, ""


# ---- missing answers -------------------------------------------------------------------------------------

# evaluate type-checks the first row of each column as a string, so a None (unparseable) answer there would
# be rejected; the registry sends this marker instead and the modules turn it back into None.
NO_ANSWER = "\x00llmplay:no-answer"


def encode(values: list) -> list:
    return [NO_ANSWER if v is None else v for v in values]


def decode(values: Sequence) -> list:
    return [None if v == NO_ANSWER else v for v in values]


def text_pair_info(description: str, inputs_description: str, citation: str = ""):
    """The ``evaluate.MetricInfo`` of a metric over (prediction, reference) string pairs: most of ours."""
    import datasets
    import evaluate

    return evaluate.MetricInfo(
        description=description,
        citation=citation,
        inputs_description=inputs_description,
        features=datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
    )


def sacrebleu_scores(sentence_fn, corpus_fn, predictions: Sequence, references: Sequence[str]) -> dict:
    """A sacrebleu metric (BLEU, chrF): the corpus score, with per-row sentence scores for display only."""
    outputs = [p or "" for p in decode(predictions)]  # no answer scores like an empty answer
    rows = [sentence_fn(p, [r]).score for p, r in zip(outputs, references)]
    return {"score": corpus_fn(outputs, [list(references)]).score, "per_row": rows, "row_mean": False}
