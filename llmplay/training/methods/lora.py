"""LoRA: low-rank updates of the linear layers (the default method; causal LMs and encoders).

Its fields (``lora_r``, ``lora_alpha``, ``lora_dropout``, ``target_modules``) are shared by DoRA and AdaLoRA.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from llmplay.training import checks
from llmplay.training.methods import Method, register_method

if TYPE_CHECKING:
    from llmplay.training.config import TrainConfig


@dataclass(kw_only=True)
class LoraOptions:
    # alpha = 2r and all linear layers follow Biderman et al. 2024. Measured (bench/finetune.py, quiet 2-core CPU,
    # SmolLM2 on 500 FPB rows through the financial-sentiment template, 300 held-out rows): with these defaults
    # 91.3% greedy accuracy (95% CI 87.7-94.3; base 33.0%; 87.7% after epoch 1) in 367 s of training, 1,534
    # training tokens/s, peak RSS 2.7 GB. Dropout 0: with dropout every LoRA input is stored twice (activations are
    # most of the memory) and each step does more work; the run above shows no overfitting to fix.
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    target_modules: str | list[str] = "default"  # default (per architecture) | all-linear | a list of names


@register_method
class Lora(Method):
    name = "lora"
    options = LoraOptions
    encoder = True
    stackable = True
    fast_loss = True
    use_dora = False

    def check_options(self, config: TrainConfig, problems: list[str]) -> None:
        checks.integer(problems, "lora_r", config.lora_r, 1, 1024)
        checks.integer(problems, "lora_alpha", config.lora_alpha, 1, 4096)
        checks.number(problems, "lora_dropout", config.lora_dropout, 0.0, 0.9)
        targets = config.target_modules
        if not (targets in ("default", "all-linear") or checks.str_list(targets)):
            problems.append("target_modules must be 'default', 'all-linear' or a list of module names")

    def causal_peft_config(self, config: TrainConfig, model, total_steps: int, tokenizer_folder: str):
        from peft import LoraConfig, TaskType

        from llmplay.training.causal_model import resolve_targets

        return LoraConfig(
            task_type=TaskType.CAUSAL_LM,
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=resolve_targets(model, config),
            use_dora=self.use_dora,
            bias="none",
        )

    def encoder_model(self, model, config: TrainConfig):
        from peft import get_peft_model

        from llmplay.training.encoder_model import lora_config

        return get_peft_model(model, lora_config(model, config))

    def encoder_to_save(self, model):
        return model.merge_and_unload()  # a stand-alone model the encoder provider serves
