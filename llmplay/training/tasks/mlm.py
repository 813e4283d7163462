"""Masked-LM continued pre-training on raw text (domain adaptation before a task); kept on disk as an encoder
that later classification / ner jobs continue."""

from __future__ import annotations

from llmplay.training.tasks import register_task
from llmplay.training.tasks.encoder_task import EncoderTask


@register_task
class Mlm(EncoderTask):
    name = "mlm"
    kind = "encoder"
