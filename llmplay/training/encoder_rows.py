"""What the encoder tasks share when they read rows: the column names they look for, picking a column, the
error that names what to fix, and plain text rows (classification, masked LM). Each task's own reading lives in
its module (tasks/ner.py: tokens and BIO tags; tasks/classification.py: its label set).

Must not know: the trainer, the data sources (encoder_data.py reads the sources and calls the task).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from llmplay.training.checks import TrainDataError

if TYPE_CHECKING:
    from llmplay.training.config import DataConfig

DOC_COLUMNS = ("doc", "document", "doc_id")
TOKEN_COLUMNS = ("tokens", "words")
TAG_COLUMNS = ("tags_iob2", "tags", "ner_tags", "labels")
TEXT_COLUMNS = ("text", "sentence", "message", "content")
LABEL_COLUMNS = ("label", "labels", "intent", "sentiment", "reference")


class EncoderDataError(TrainDataError):
    """The training data for an encoder job is unusable; the message says what to fix."""


def pick_column(row: dict, wanted: str | None, hint: str | None, fallbacks: tuple[str, ...]) -> str | None:
    if wanted:
        return wanted
    if hint:
        return hint
    return next((c for c in fallbacks if c in row), None)


def columns_of(row: dict) -> str:
    return ", ".join(str(c) for c in row if not str(c).startswith("_")) or "(none)"


def as_list(value: Any) -> list[str]:
    """A list cell: a list, a JSON list as text, or items separated by spaces."""
    if isinstance(value, list):
        return [str(v) for v in value]
    text = str(value or "").strip()
    if text.startswith("["):
        try:
            return [str(v) for v in json.loads(text)]
        except json.JSONDecodeError:
            pass
    return text.split()


def text_rows(raw: list[dict], d: DataConfig, source: str, labelled: bool) -> tuple[list[dict], list[str]]:
    """Rows ``{"id", "text"}`` (classification, mlm), with a ``label`` when ``labelled``."""
    first = raw[0]
    text_col = pick_column(first, d.text_column, first.get("_text_column"), TEXT_COLUMNS)
    if text_col is None or text_col not in first:
        raise EncoderDataError(
            f"{source} has no text column{f' {text_col!r}' if text_col else ''}: set data.text_column to one "
            f"of its columns ({columns_of(first)})."
        )
    label_col = None
    if labelled:
        label_col = pick_column(first, d.label_column, first.get("_label_column"), LABEL_COLUMNS)
        if label_col is None or label_col not in first:
            raise EncoderDataError(
                f"{source} has no label column{f' {label_col!r}' if label_col else ''}: set data.label_column "
                f"to one of its columns ({columns_of(first)})."
            )
    rows, skipped = [], 0
    for i, r in enumerate(raw):
        text = str(r.get(text_col) or "").strip()
        label = str(r.get(label_col) or "").strip() if label_col else None
        if not text or (label_col and not label):
            skipped += 1
            continue
        row = {"id": i, "text": text}
        if label_col:
            row["label"] = label
        if r.get("doc") not in (None, ""):
            row["doc"] = r["doc"]
        rows.append(row)
    notes = [f"{skipped} row(s) with an empty text or label were skipped."] if skipped else []
    return rows, notes
