"""Token classification with BIO tags (named entities); the version is a tagger model.

Each word's tag sits on its first sub-token; the other sub-tokens are -100 and carry no loss.
"""

from __future__ import annotations

from llmplay.training.tasks import register_task
from llmplay.training.tasks.encoder_task import EncoderTask


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
        from llmplay.training.encoder_data import ner_rows

        return ner_rows(raw, d, source)

    def label_set(self, rows, declared, source):
        from llmplay.training.encoder_data import bio_labels

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
