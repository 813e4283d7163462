"""Sequence classification (sentiment, intent): a text -> one label; the version is a classifier model."""

from __future__ import annotations

from llmplay.training.encoder_rows import EncoderDataError, text_rows
from llmplay.training.tasks import register_task
from llmplay.training.tasks.encoder_task import EncoderTask


@register_task
class Classification(EncoderTask):
    name = "classification"
    kind = "classifier"

    def rows(self, raw, d, source):
        return text_rows(raw, d, source, labelled=True)

    def label_set(self, rows, declared, source):
        return class_labels(rows, declared, source)

    def encode(self, tokenizer, row, index, limit):
        return {**super().encode(tokenizer, row, index, limit), "labels": index[row["label"]]}

    def preview_segments(self, row):
        return [*super().preview_segments(row), {"text": f" -> {row['label']}", "trained": True}]

    def metrics(self, labels):
        from llmplay.evaluation.metrics.scoring import macro_f1

        def classification(prediction) -> dict[str, float]:
            preds = [labels[int(p)] for p in prediction.predictions]
            refs = [labels[int(r)] for r in prediction.label_ids]
            accuracy = sum(p == r for p, r in zip(preds, refs)) / len(refs) if refs else 0.0
            return {"accuracy": accuracy, "macro_f1": macro_f1(preds, refs, labels=labels)["macro_f1"]}

        return classification


def class_labels(rows: list[dict], declared: list[str] | None, source: str) -> list[str]:
    """The class names of classification rows: data.labels when declared (every row's label among them)."""
    found = sorted({r["label"] for r in rows})
    labels = list(declared) if declared else found
    unknown = sorted(set(found) - set(labels))
    if unknown:
        raise EncoderDataError(
            f"{source} has label(s) not in data.labels: {', '.join(unknown[:10])}"
            f"{' and more' if len(unknown) > 10 else ''}. Add them to data.labels or fix the rows."
        )
    if len(labels) < 2:
        raise EncoderDataError(f"{source} has only the label {labels!r}: a classifier needs at least two.")
    return labels
