"""Supervised fine-tuning: prompt -> answer rows, the loss on the answer only (data.py renders the prompts)."""

from __future__ import annotations

from llmplay.training.tasks import PROMPT_ROWS, register_task
from llmplay.training.tasks.causal_lm import CausalLmTask


@register_task
class Sft(CausalLmTask):
    name = "sft"
    row_shape = PROMPT_ROWS  # rendered through data.template when one is set

    def check(self, config, problems: list[str]) -> None:
        if config.data.source == "dataset" and not config.data.template:
            problems.append("data.template is required to train on a dataset (rows are rendered through it)")
