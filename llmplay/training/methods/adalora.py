"""AdaLoRA: LoRA whose ranks are pruned toward a budget while training (causal LMs).

Ranks start at ``adalora_init_r`` and are pruned toward ``adalora_target_r`` between step ``adalora_tinit`` and
total - ``adalora_tfinal``; ``lora_alpha``, ``lora_dropout`` and ``target_modules`` are LoRA's. The orthogonality
penalty lives in peft's forward, so the causal trainer's own fast loss is not used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmplay.training import checks
from llmplay.training.methods import Method, register_method

if TYPE_CHECKING:
    from llmplay.training.config import TrainConfig


@dataclass(kw_only=True)
class AdaLoraOptions:
    adalora_init_r: int = 12
    adalora_target_r: int = 4
    adalora_tinit: int = 0
    adalora_tfinal: int = 0
    adalora_delta_t: int = 1


@register_method
class AdaLora(Method):
    name = "adalora"
    options = AdaLoraOptions
    stackable = True

    def check_options(self, config: TrainConfig, problems: list[str]) -> None:
        checks.integer(problems, "adalora_init_r", config.adalora_init_r, 1, 1024)
        checks.integer(problems, "adalora_target_r", config.adalora_target_r, 1, 1024)
        ranks = (config.adalora_init_r, config.adalora_target_r)
        if all(isinstance(r, int) for r in ranks) and ranks[1] > ranks[0]:
            problems.append("adalora_target_r must not exceed adalora_init_r")
        checks.integer(problems, "adalora_tinit", config.adalora_tinit, 0, 10**7)
        checks.integer(problems, "adalora_tfinal", config.adalora_tfinal, 0, 10**7)
        checks.integer(problems, "adalora_delta_t", config.adalora_delta_t, 1, 10**6)

    def check_schedule(self, config: TrainConfig, total_steps: int) -> None:
        from llmplay.training.causal_model import CausalTrainingError

        if config.adalora_tinit + config.adalora_tfinal >= total_steps:
            raise CausalTrainingError(
                f"AdaLoRA prunes ranks between step adalora_tinit ({config.adalora_tinit}) and {total_steps} - "
                f"adalora_tfinal ({config.adalora_tfinal}), but this run has only {total_steps} steps: lower "
                "adalora_tinit / adalora_tfinal, or train for more steps."
            )

    def causal_peft_config(self, config: TrainConfig, model, total_steps: int, tokenizer_folder: str):
        from peft import AdaLoraConfig, TaskType

        from llmplay.training.causal_model import resolve_targets

        targets = resolve_targets(model, config)
        self.check_schedule(config, total_steps)
        return AdaLoraConfig(
            task_type=TaskType.CAUSAL_LM,
            init_r=config.adalora_init_r,
            target_r=config.adalora_target_r,
            tinit=config.adalora_tinit,
            tfinal=config.adalora_tfinal,
            deltaT=config.adalora_delta_t,
            total_step=total_steps,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=targets,
        )

    def continue_adapter(self, peft_model, config: TrainConfig, total_steps: int) -> None:
        self.check_schedule(config, total_steps)
        peft_model.peft_config["default"].total_step = total_steps

    def callbacks(self) -> list[Any]:
        from llmplay.training.callbacks import AdaLoraAllocator

        return [AdaLoraAllocator()]

    def metrics(self, model) -> dict[str, Any]:
        from llmplay.training.callbacks import active_ranks

        return {"adalora_active_ranks": active_ranks(model)}
