"""Token classification with BIO tags (named entities); the version is a tagger model.

Each word's tag sits on its first sub-token; the other sub-tokens are -100 and carry no loss.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmplay.training.encoder_rows import (
    DOC_COLUMNS,
    TAG_COLUMNS,
    TOKEN_COLUMNS,
    EncoderDataError,
    as_list,
    columns_of,
    pick_column,
)
from llmplay.training.tasks import register_task
from llmplay.training.tasks.encoder_task import EncoderTask

if TYPE_CHECKING:
    from llmplay.training.config import DataConfig


@register_task
class Ner(EncoderTask):
    name = "ner"
    kind = "tagger"
    plain_file_format = "conll"  # CoNLL files usually have no known suffix (eng.train, eng.testb)

    def model_class(self):
        from transformers import AutoModelForTokenClassification

        return AutoModelForTokenClassification

    def check_tokenizer(self, tokenizer, folder):
        if not tokenizer.is_fast:
            from llmplay.training.encoder_model import EncoderModelError

            raise EncoderModelError(
                f"{folder} has only a slow tokenizer; NER needs a fast one (tokenizer.json) to align tags to "
                "sub-tokens."
            )

    def rows(self, raw, d, source):
        return ner_rows(raw, d, source)

    def label_set(self, rows, declared, source):
        return bio_labels(rows, declared, source)

    def encode(self, tokenizer, row, index, limit):
        enc = tokenizer(row["tokens"], is_split_into_words=True, truncation=True, max_length=limit)
        words = [w for w in enc.word_ids() if w is not None]
        item = {**enc, "labels": align_labels(enc.word_ids(), row["tags"], index)}
        item["truncated"] = (words[-1] if words else -1) < len(row["tokens"]) - 1
        return item

    def token_length(self, tokenizer, row):
        return len(tokenizer(row["tokens"], is_split_into_words=True)["input_ids"])

    def preview_segments(self, row):
        return [
            part
            for word, tag in zip(row["tokens"], row["tags"])
            for part in ({"text": word + " ", "trained": False}, {"text": tag + " ", "trained": True})
            if tag != "O" or not part["trained"]
        ]

    def collator(self, tokenizer, seed):
        from transformers import DataCollatorForTokenClassification

        return DataCollatorForTokenClassification(tokenizer)

    def metrics(self, labels):
        def ner(prediction) -> dict[str, float]:
            from seqeval.metrics import f1_score, precision_score, recall_score

            preds, refs = decode_tags(prediction.predictions, prediction.label_ids, labels)
            return {
                "entity_f1": f1_score(refs, preds, zero_division=0),
                "entity_precision": precision_score(refs, preds, zero_division=0),
                "entity_recall": recall_score(refs, preds, zero_division=0),
            }

        return ner


def align_labels(word_ids: list[int | None], tags: list[str], index: dict[str, int]) -> list[int]:
    """One label per sub-token: the word's tag on its first sub-token, -100 on the rest and on special tokens."""
    labels, previous = [], None
    for word in word_ids:
        labels.append(-100 if word is None or word == previous else index[tags[word]])
        previous = word
    return labels


def decode_tags(predictions, label_ids, labels: list[str]) -> tuple[list[list[str]], list[list[str]]]:
    """Per row, the predicted and gold tags at the labelled positions (each word's first sub-token)."""
    preds, refs = [], []
    for pred_row, label_row in zip(predictions, label_ids):
        keep = [(int(p), int(g)) for p, g in zip(pred_row, label_row) if g != -100]
        preds.append([labels[p] if 0 <= p < len(labels) else "O" for p, _ in keep])
        refs.append([labels[g] for _, g in keep])
    return preds, refs


def ner_rows(raw: list[dict], d: DataConfig, source: str) -> tuple[list[dict], list[str]]:
    """Rows ``{"id", "tokens", "tags"}`` with BIO tags (ner)."""
    first = raw[0]
    token_col = pick_column(first, d.text_column, None, TOKEN_COLUMNS)
    text_hint = first.get("_text_column")
    if token_col is None and text_hint in first:
        token_col = text_hint  # a saved dataset's text column: tokens separated by spaces
    tag_col = pick_column(first, d.label_column, first.get("_label_column"), TAG_COLUMNS)
    missing = [what for what, col in (("tokens", token_col), ("tags", tag_col)) if col is None or col not in first]
    if missing:
        raise EncoderDataError(
            f"{source} has no {' and no '.join(missing)} column: NER rows need a list of tokens and one BIO tag "
            f"per token (set data.text_column / data.label_column; columns: {columns_of(first)})."
        )
    doc_col = next((c for c in DOC_COLUMNS if c in first), None)
    rows, skipped = [], 0
    for i, r in enumerate(raw):
        tokens, tags = as_list(r.get(token_col)), as_list(r.get(tag_col))
        if not tokens:
            skipped += 1
            continue
        if len(tokens) != len(tags):
            raise EncoderDataError(
                f"{source} row {i + 1}: {len(tokens)} tokens but {len(tags)} tags; give one tag per token."
            )
        row = {"id": i, "tokens": tokens, "tags": to_bio(tags)}
        if doc_col and r.get(doc_col) not in (None, ""):
            row["doc"] = r[doc_col]
        rows.append(row)
    notes = [f"{skipped} row(s) without tokens were skipped."] if skipped else []
    return rows, notes


def to_bio(tags: list[str]) -> list[str]:
    """IOB1 or BIO tags as BIO: an ``I-X`` that does not continue an ``X`` entity starts one (``B-X``)."""
    out, previous = [], "O"
    for tag in tags:
        tag = tag.strip() or "O"
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            tag = "B-" + tag[2:]
        out.append(tag)
        previous = tag
    return out


def bio_labels(rows: list[dict], declared: list[str] | None, source: str) -> list[str]:
    """The BIO tag set of ner rows (O first), from data.labels when declared, else from the tags found."""
    for row in rows:
        bad = [t for t in row["tags"] if t != "O" and not (t[:2] in ("B-", "I-") and len(t) > 2)]
        if bad:
            raise EncoderDataError(f"{source} row {row['id'] + 1}: tag {bad[0]!r} is not BIO (O, B-TYPE or I-TYPE).")
    found_types = sorted({t[2:] for r in rows for t in r["tags"] if t != "O"})
    types = _declared_types(declared) if declared else found_types
    unknown = sorted(set(found_types) - set(types))
    if unknown:
        raise EncoderDataError(
            f"{source} has entity type(s) not in data.labels: {', '.join(unknown)}. Add them or fix the tags."
        )
    if not types:
        raise EncoderDataError(f"{source} has no entities at all (every tag is O): nothing to learn.")
    return ["O"] + [f"{p}-{t}" for t in types for p in ("B", "I")]


def _declared_types(declared: list[str]) -> list[str]:
    """data.labels for NER: entity types (PER, ORG) or full tags (O, B-PER, I-PER) - both mean the types."""
    types = [lab[2:] if lab[:2] in ("B-", "I-") else lab for lab in declared if lab != "O"]
    return list(dict.fromkeys(types))
