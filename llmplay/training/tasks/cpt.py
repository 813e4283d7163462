"""Continued pre-training: raw text, the loss on every token."""

from __future__ import annotations

from llmplay.training.tasks import TEXT_ROWS, register_task
from llmplay.training.tasks.causal_lm import CausalLmTask


@register_task
class Cpt(CausalLmTask):
    name = "cpt"
    row_shape = TEXT_ROWS
