"""What the encoder tasks share: the encoder trainer (a BERT-family encoder with a task head).

``EncoderTask`` supplies the shared behaviour of a text task without labels; each encoder task overrides what
is its own: the model head (``model_class``, ``labelled``), the rows it reads (``rows``, ``label_set``), how a
row is tokenized (``encode``, ``token_length``), the collator, the validation metrics and the preview. The
encoder trainer (training/encoder.py, encoder_data.py, encoder_model.py) only calls these hooks.
"""

from __future__ import annotations

from llmplay.training.methods import METHODS
from llmplay.training.tasks import ENCODER, Task, a_kind


class EncoderTask(Task):
    family = ENCODER
    labelled = True  # the head is sized to the data's labels (classification, ner); False: the model's own head
    plain_file_format = "text"  # what a file without a table suffix is read as (data.format auto)

    def check(self, config, problems: list[str]) -> None:
        if config.method in METHODS.names() and not METHODS.get(config.method).encoder:
            problems.append(f"encoder task {self.name!r} supports method full (with freeze_layers) or lora")

    def check_model(self, config, kind):
        if kind in ("chat", "base"):
            return (
                f"Task {self.name!r} trains an encoder (BERT-family); {config.base_model!r} is {a_kind(kind)} model. "
                "Pick an encoder such as all-minilm-l6-v2, or task sft / cpt."
            )
        return None

    def check_data(self, config, settings):
        from llmplay.training.encoder_data import load_encoder_data

        load_encoder_data(config, settings)

    def train(self, config, settings, job_dir, callbacks=(), *, output_dir=None, resume_from=None):
        from llmplay.training.encoder import train_encoder

        return train_encoder(config, settings, job_dir, callbacks, output_dir=output_dir, resume_from=resume_from)

    # ---- model ----

    def model_class(self):
        """The transformers Auto class that loads the model with this task's head."""
        from transformers import AutoModelForSequenceClassification

        return AutoModelForSequenceClassification

    def check_tokenizer(self, tokenizer, folder: str) -> None:
        """Raise when this task cannot work with ``tokenizer`` (loaded from ``folder``)."""

    def head_modules(self, model) -> list[str]:
        """Names of the task head (trained in full next to LoRA): the model's own modules outside the encoder."""
        prefix = model.base_model_prefix
        names = [n for n, m in model.named_children() if n != prefix and any(True for _ in m.parameters())]
        if getattr(model.base_model, "pooler", None) is not None:  # BERT's sentence head reads the pooled [CLS]
            names.insert(0, f"{prefix}.pooler")
        return names

    # ---- data ----

    def rows(self, raw: list[dict], d, source: str) -> tuple[list[dict], list[str]]:
        """(normalised rows, notes) of the raw rows: ``{"id", "text"}`` here."""
        from llmplay.training.encoder_rows import text_rows

        return text_rows(raw, d, source, labelled=False)

    def label_set(self, rows: list[dict], declared: list[str] | None, source: str) -> list[str]:
        """The labels the head predicts (empty: no labels)."""
        return []

    def encode(self, tokenizer, row: dict, index: dict[str, int], limit: int) -> dict:
        """Token ids (and labels) of one row, cut at ``limit``; ``truncated`` marks a row that lost tokens."""
        enc = tokenizer(row["text"])
        item = {**enc, "truncated": len(enc["input_ids"]) > limit}
        if item["truncated"]:
            item.update(tokenizer(row["text"], truncation=True, max_length=limit))
        return item

    def token_length(self, tokenizer, row: dict) -> int:
        return len(tokenizer(row["text"])["input_ids"])

    def preview_segments(self, row: dict) -> list[dict]:
        """The row as text segments for the preview, the trained part (label, tags) marked ``trained``."""
        return [{"text": row["text"], "trained": False}]

    # ---- training ----

    def collator(self, tokenizer, seed: int):
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(tokenizer)

    def metrics(self, labels: list[str]):
        """The Trainer's compute_metrics for predictions argmaxed over the labels; None: the loss only."""
        return None

    def add_metrics(self, metrics: dict) -> dict:
        """Metrics derived from the cleaned evaluation metrics (mlm: perplexity)."""
        return metrics
