"""Sequence classification (sentiment, intent): a text -> one label; the version is a classifier model."""

from __future__ import annotations

from llmplay.training.tasks import register_task
from llmplay.training.tasks.encoder_task import EncoderTask


@register_task
class Classification(EncoderTask):
    name = "classification"
    kind = "classifier"

    def rows(self, raw, d, source):
        from llmplay.training.encoder_data import text_rows

        return text_rows(raw, d, source, labelled=True)

    def label_set(self, rows, declared, source):
        from llmplay.training.encoder_data import class_labels

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
