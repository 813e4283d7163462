"""Full fine-tuning of an encoder: every weight trains, except the embeddings and the lowest ``freeze_layers``
layers when set; the task head always trains. Causal LMs train an adapter instead."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from llmplay.training import checks
from llmplay.training.methods import Method, register_method

if TYPE_CHECKING:
    from llmplay.training.config import TrainConfig


@dataclass(kw_only=True)
class FullOptions:
    freeze_layers: int = 0  # encoders: freeze the embeddings and the lowest N layers; the head always trains


@register_method
class Full(Method):
    name = "full"
    options = FullOptions
    peft = False
    causal = False
    encoder = True

    def check_options(self, config: TrainConfig, problems: list[str]) -> None:
        checks.integer(problems, "freeze_layers", config.freeze_layers, 0, 1000)

    def encoder_model(self, model, config: TrainConfig):
        from llmplay.training.encoder_model import freeze_lower_layers

        freeze_lower_layers(model, config.freeze_layers)
        return model
