"""The Hugging Face TrainingArguments every llmplay job shares (causal and encoder), built from a TrainConfig.

Each trainer adds only what differs (causal: max_steps from its own step count, length-grouped batches for
padding "prefix"/"group", loss-only evaluation; encoder: epochs, eval batch size, token counting).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmplay.training.callbacks import world_size
from llmplay.training.config import TrainConfig


def use_bf16(setting: str) -> bool:
    """bf16 autocast: "true", "false", or "auto" (where the GPU or CPU has native bf16)."""
    import torch

    from llmplay.models.loader import cpu_supports_bf16

    value = str(setting).lower()
    if value == "auto":
        return (torch.cuda.is_available() and torch.cuda.is_bf16_supported()) or cpu_supports_bf16()
    return value == "true"


def training_arguments(config: TrainConfig, job_dir: Path, has_validation: bool, args_class=None, **specific: Any):
    """TrainingArguments for ``config``: the shared schedule, checkpoints, evaluation and logging, plus
    ``specific`` (each trainer's own keys; they win over the shared ones). ``args_class``: a TrainingArguments
    subclass (TRL's DPOConfig for task dpo)."""
    import torch
    from transformers import TrainingArguments

    per_eval = "steps" if config.eval_steps else "epoch"
    save = "steps" if config.save_steps else "epoch"
    best = bool(config.early_stopping_patience and has_validation)
    if best:
        save = per_eval  # keeping the best model needs a checkpoint at every evaluation
    shared = {
        "output_dir": str(Path(job_dir) / "checkpoints"),
        "per_device_train_batch_size": config.batch_size,
        "per_device_eval_batch_size": config.batch_size,
        "gradient_accumulation_steps": config.grad_accum,
        "learning_rate": config.learning_rate,
        "lr_scheduler_type": config.lr_scheduler,
        "warmup_steps": config.warmup_ratio,  # a float below 1 is a ratio of the total steps
        "weight_decay": config.weight_decay,
        "seed": config.seed,
        "bf16": use_bf16(config.bf16),
        "use_cpu": not torch.cuda.is_available(),
        "ddp_backend": "gloo" if world_size() > 1 and not torch.cuda.is_available() else None,
        "eval_strategy": per_eval if has_validation else "no",
        "eval_steps": config.eval_steps or None,
        "save_strategy": save,
        "save_steps": config.save_steps or 500,
        "save_total_limit": 2,
        "load_best_model_at_end": best,
        "metric_for_best_model": "eval_loss" if best else None,
        "greater_is_better": False if best else None,
        "logging_steps": config.logging_steps,
        "logging_first_step": True,
        "report_to": list(config.report_to) or "none",  # TensorBoard: the job's own callback (callbacks.py)
        "disable_tqdm": True,  # the log file gets one line per log event, not carriage-return bars
        "dataloader_num_workers": 0,
        "remove_unused_columns": False,
    }
    return (args_class or TrainingArguments)(**(shared | specific))
