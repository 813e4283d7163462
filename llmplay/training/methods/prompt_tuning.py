"""Prompt tuning: trainable virtual tokens prepended to every row, the rest of the model frozen (causal LMs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from llmplay.training import checks
from llmplay.training.methods import Method, register_method

if TYPE_CHECKING:
    from llmplay.training.config import TrainConfig


@dataclass(kw_only=True)
class PromptTuningOptions:
    num_virtual_tokens: int = 16


@register_method
class PromptTuning(Method):
    name = "prompt_tuning"
    options = PromptTuningOptions

    def check_options(self, config: TrainConfig, problems: list[str]) -> None:
        checks.integer(problems, "num_virtual_tokens", config.num_virtual_tokens, 1, 512)

    def causal_peft_config(self, config: TrainConfig, model, total_steps: int, tokenizer_folder: str):
        from peft import PromptTuningConfig, PromptTuningInit, TaskType

        # Virtual tokens start as embeddings of real tokens: random vectors off the embedding scale train slowly.
        return PromptTuningConfig(
            task_type=TaskType.CAUSAL_LM,
            num_virtual_tokens=config.num_virtual_tokens,
            prompt_tuning_init=PromptTuningInit.SAMPLE_VOCAB,
            tokenizer_name_or_path=tokenizer_folder,
        )

    def batching(self, mode: str, notes: list[str]) -> str:
        if mode in ("prefix", "pack"):
            notes.append("Prompt tuning prepends virtual tokens to every row: batches are length-grouped, not packed.")
            return "group"
        return mode

    def notes(self, config: TrainConfig) -> list[str]:
        if config.learning_rate < 1e-3:
            return ["Prompt tuning usually needs a much larger learning rate than LoRA (around 1e-2 to 3e-2)."]
        return []
