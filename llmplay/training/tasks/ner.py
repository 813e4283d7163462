"""Token classification with BIO tags (named entities); the version is a tagger model."""

from __future__ import annotations

from llmplay.training.tasks import register_task
from llmplay.training.tasks.encoder_task import EncoderTask


@register_task
class Ner(EncoderTask):
    name = "ner"
    kind = "tagger"
