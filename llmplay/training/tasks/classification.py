"""Sequence classification (sentiment, intent): a text -> one label; the version is a classifier model."""

from __future__ import annotations

from llmplay.training.tasks import register_task
from llmplay.training.tasks.encoder_task import EncoderTask


@register_task
class Classification(EncoderTask):
    name = "classification"
    kind = "classifier"
