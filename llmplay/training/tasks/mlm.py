"""Masked-LM continued pre-training on raw text (domain adaptation before a task); kept on disk as an encoder
that later classification / ner jobs continue."""

from __future__ import annotations

import math

from llmplay.training.tasks import register_task
from llmplay.training.tasks.encoder_task import EncoderTask

MLM_PROBABILITY = 0.15  # BERT's masking rate


@register_task
class Mlm(EncoderTask):
    name = "mlm"
    kind = "encoder"
    labelled = False  # the masked-LM head predicts the vocabulary

    def model_class(self):
        from transformers import AutoModelForMaskedLM

        return AutoModelForMaskedLM

    def head_modules(self, model):
        # The MLM decoder is tied to the word embeddings: train the head's transform, keep the tie.
        names = [n for n, _ in model.named_modules() if n.endswith("predictions.transform")]
        return names[:1]

    def collator(self, tokenizer, seed):
        from transformers import DataCollatorForLanguageModeling

        return DataCollatorForLanguageModeling(tokenizer, mlm_probability=MLM_PROBABILITY, seed=seed)

    def add_metrics(self, metrics):
        if "loss" in metrics:
            metrics["perplexity"] = round(math.exp(min(metrics["loss"], 50)), 4)
        return metrics
