"""From a column's replies to metric inputs: which text each metric scores and how references are read.

Metrics themselves live in ``metrics/`` (evaluate modules); this module knows what a metric expects:
classification metrics get the parsed label (None when unparseable, counted as wrong), entity metrics get
BIO tags rebuilt from "TYPE: entity" lines over the row's tokens, assertions check the whole reply, and
text metrics compare the parsed answer with the reference.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llmplay.errors import LlmplayError
from llmplay.evaluation.config import MetricConfig
from llmplay.templates.conversation import read_script
from llmplay.templates.model import Template

LABEL_METRICS = {"accuracy", "macro_f1"}
ENTITY_METRICS = {"seqeval", "entity_f1", "entity_precision", "entity_recall"}
ASSERTIONS = {"assertions", "contains", "regex", "valid_json", "json_schema", "length"}
# Structured output (evaluation/structured.py): the answer against the template's output.schema, or its fields
# against the reference column's JSON object.
SCHEMA_METRICS = {"schema_valid"}
FIELD_METRICS = {"field_match", "field_f1"}
# Retrieval-augmented answers (evaluation/rag.py): each row's passages (and question) as the template rendered them.
RAG_METRICS = {"faithfulness", "answer_relevance", "context_recall"}
# Conversations (evaluation/turn_checks.py): the replies turn by turn against the row's script's expectations.
TURN_METRICS = {"turn_pass", "conversation_pass"}
# Tool calls (evaluation/toolcalls.py): the parsed call against the reference call; tool_args_valid also gets the
# template's tools, whose parameters schemas the arguments are checked against.
TOOL_METRICS = {"tool_called", "tool_args_valid", "tool_args_match", "tool_no_call"}
# Attacks (evaluation/attacks.py): the whole reply against each row's own check, read from the row's columns.
ATTACK_METRICS = {"attack_success"}
ATTACK_COLUMNS = {"kind_column": "kind", "check_column": "success_if"}  # argument -> default dataset column
# Metrics that need no reference column (they check the reply itself).
REFERENCE_FREE = {
    "valid_json",
    "length",
    "faithfulness",
    "answer_relevance",
    *SCHEMA_METRICS,
    *TURN_METRICS,
    *ATTACK_METRICS,
}


class ScoringError(LlmplayError):
    pass


@dataclass(frozen=True)
class ColumnReplies:
    """What a column produced for the rows being scored (same order as ``rows``)."""

    template: Template
    texts: list[str | None]  # the full replies (None where the row failed)
    answers: list[str | None]  # parsed answers (None = unparseable or failed)
    rows: list[dict[str, Any]]  # the dataset rows (all columns as text)
    references: list[Any] | None  # the reference column's values, or None when the dataset has none
    text_variable: str | None = None  # the dataset column holding the input text (entity metrics' tokens)
    variables: dict[str, str] | None = None  # template variable -> dataset column, as the run resolved it


def needs_reference(metric: MetricConfig) -> bool:
    if metric.name in REFERENCE_FREE:
        return False
    return not (metric.name in ASSERTIONS and "value" in metric.args)


def metric_inputs(metric: MetricConfig, replies: ColumnReplies) -> tuple[list, list | None, dict]:
    """(predictions, references, extra keyword arguments) for ``metric`` on these replies."""
    refs = replies.references
    if refs is None and needs_reference(metric):
        raise ScoringError(
            f"Metric '{metric.name}' compares answers with a reference, but the dataset has no reference column: "
            "map one when saving the dataset, or choose a reference-free metric (valid_json, length, contains with "
            "a value)."
        )
    kwargs = dict(metric.args)
    if metric.name in LABEL_METRICS:
        labels = replies.template.output.labels
        preds = [_label(a) for a in replies.answers]
        if metric.name == "macro_f1" and labels:
            kwargs.setdefault("labels", [_label(x) for x in labels])
        return preds, [_label(r) for r in refs], kwargs
    if metric.name in ENTITY_METRICS:
        preds, gold = [], []
        for answer, reference, row in zip(replies.answers, refs, replies.rows):
            tags = reference_tags(reference)
            tokens = row_tokens(row, replies.text_variable, len(tags))
            preds.append(entity_lines_to_bio(answer, tokens))
            gold.append(tags)
        return preds, gold, kwargs
    if metric.name in SCHEMA_METRICS:
        schema = replies.template.output.schema
        if schema is None:
            raise ScoringError(
                f"Metric '{metric.name}' checks answers against the template's JSON Schema, and template "
                f"'{replies.template.name}' declares none: add output: {{json: true, schema: {{...}}}} to it, or use "
                "json_schema with the schema as its value."
            )
        kwargs["schema"] = schema
        return list(replies.answers), None, kwargs
    if metric.name in ATTACK_METRICS:
        for argument, default in ATTACK_COLUMNS.items():
            column = str(kwargs.pop(argument, default))
            missing = [i + 1 for i, row in enumerate(replies.rows) if column not in row]
            if missing:
                have = ", ".join(sorted(replies.rows[missing[0] - 1])) if replies.rows else "none"
                raise ScoringError(
                    f"Metric '{metric.name}' reads each row's attack kind and success_if check, and the dataset has "
                    f"no '{column}' column (columns: {have}); add it, or name yours with {argument}: ..."
                )
            kwargs["kinds" if argument == "kind_column" else "checks"] = [_text(r[column]) for r in replies.rows]
        return list(replies.texts), None, kwargs
    if metric.name in TOOL_METRICS:
        if not replies.template.tools:
            raise ScoringError(
                f"Metric '{metric.name}' scores tool calls, and template '{replies.template.name}' offers no tools: "
                "add a tools: list (OpenAI function format) to it."
            )
        if metric.name == "tool_args_valid":
            kwargs["tools"] = list(replies.template.tools)
        # An empty reference cell means no call is expected; a mapping from a JSON dataset is written as JSON.
        return list(replies.answers), [json.dumps(r) if isinstance(r, dict) else _text(r) for r in refs], kwargs
    if metric.name in TURN_METRICS:
        return list(replies.answers), turn_expectations(replies), kwargs
    if metric.name in RAG_METRICS:
        return rag_inputs(metric, replies, kwargs)
    if metric.name in FIELD_METRICS:
        # The reference column holds JSON objects as text (a mapping from a JSON dataset is written as JSON).
        return list(replies.answers), [json.dumps(r) if isinstance(r, dict) else _text(r) for r in refs], kwargs
    if metric.name in ASSERTIONS:
        # JSON checks look at the answer the template's parser found (models wrap JSON in prose and fences);
        # the other checks look at the whole reply, as a user reads it.
        json_check = metric.name in {"valid_json", "json_schema"} or kwargs.get("check") in {"json", "json_schema"}
        outputs = replies.answers if json_check and replies.template.output.json else replies.texts
        return list(outputs), None if refs is None else [_text(r) for r in refs], kwargs
    return list(replies.answers), [_text(r) for r in refs], kwargs


def turn_expectations(replies: ColumnReplies) -> list[str]:
    """Each row's per-turn expectations (JSON list, null for unchecked turns), read from its conversation."""
    spec = replies.template.conversation
    if spec is None:
        raise ScoringError(
            f"Turn metrics check conversations turn by turn, and template '{replies.template.name}' is not a "
            "conversation template: add conversation: {messages: <variable>} to it."
        )
    column = (replies.variables or {}).get(spec.messages, spec.messages)
    out = []
    for i, row in enumerate(replies.rows):
        try:
            script = read_script(row.get(column))
        except LlmplayError as exc:
            raise ScoringError(f"row {i + 1}: {exc}") from None
        out.append(json.dumps([e.expect for e in script], ensure_ascii=False))
    return out


def rag_inputs(metric: MetricConfig, replies: ColumnReplies, kwargs: dict) -> tuple[list, list | None, dict]:
    """Faithfulness and context recall get each row's passages, answer relevance its question."""
    from llmplay.evaluation import rag

    try:
        contexts, questions = rag.row_inputs(replies.template, replies.rows, replies.variables)
    except LlmplayError as exc:
        raise ScoringError(f"Metric '{metric.name}': {exc}") from None
    if metric.name == "answer_relevance":
        return list(replies.answers), None, {**kwargs, "questions": questions}
    kwargs["contexts"] = contexts
    if metric.name == "context_recall":
        return list(replies.answers), [_text(r) for r in replies.references or []], kwargs
    return list(replies.answers), None, kwargs


# ---- labels and text ---------------------------------------------------------------------------------------


def _label(value: Any) -> str | None:
    if value is None:
        return None
    return " ".join(str(value).split()).casefold()


def _text(value: Any) -> str:
    return "" if value is None else str(value)


# ---- entities ------------------------------------------------------------------------------------------------

_ENTITY_LINE = re.compile(r"^\s*[-*]?\s*([A-Za-z]+)\s*:\s*(.+?)\s*$")


def reference_tags(value: Any) -> list[str]:
    """A row's gold BIO tags: a JSON list, a Python list, or tags separated by spaces."""
    if isinstance(value, list):
        return [str(t) for t in value]
    text = str(value or "").strip()
    if text.startswith("["):
        try:
            return [str(t) for t in json.loads(text)]
        except json.JSONDecodeError:
            pass
    return text.split()


def row_tokens(row: dict[str, Any], text_variable: str | None, n: int) -> list[str]:
    """The row's tokens: a ``tokens`` column (JSON list) if there is one, else the input text split on spaces."""
    raw = row.get("tokens")
    if raw:
        tokens = raw if isinstance(raw, list) else reference_tags(raw)
        if len(tokens) == n or not n:
            return [str(t) for t in tokens]
    text = str(row.get(text_variable or "text") or "")
    tokens = text.split()
    if n and len(tokens) != n:
        raise ScoringError(
            f"A row has {n} reference tags but {len(tokens)} tokens in its text; give a 'tokens' column "
            "(JSON list) that lines up with the tags."
        )
    return tokens


def entity_lines_to_bio(answer: str | None, tokens: Sequence[str]) -> list[str]:
    """BIO tags for ``tokens`` from a reply listing entities as "TYPE: entity" lines.

    Each entity is matched to the first run of tokens equal to its words that is not tagged yet (so an
    entity named twice in the reply tags two occurrences); entities not found in the sentence are ignored,
    which costs recall on the gold side and never invents a span. No answer tags nothing.
    """
    tags = ["O"] * len(tokens)
    if not answer:
        return tags
    for line in answer.splitlines():
        match = _ENTITY_LINE.match(line)
        if not match:
            continue
        kind, entity = match.group(1).upper(), match.group(2)
        words = entity.split()
        if not words:
            continue
        for start in range(len(tokens) - len(words) + 1):
            if tokens[start : start + len(words)] == words and all(t == "O" for t in tags[start : start + len(words)]):
                tags[start] = f"B-{kind}"
                for k in range(start + 1, start + len(words)):
                    tags[k] = f"I-{kind}"
                break
    return tags
