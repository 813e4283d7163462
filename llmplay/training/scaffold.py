"""The training scaffold every trainer shares (causal, DPO, encoder): arguments, callbacks, the run, metrics, save.

- ``training_arguments``: the Hugging Face TrainingArguments built from a TrainConfig; each trainer adds only
  what differs (causal: max_steps from its own step count, length-grouped batches for padding "prefix"/"group",
  loss-only evaluation; DPO: TRL's DPOConfig; encoder: epochs, eval batch size, token counting);
- ``job_callbacks``: the method's callbacks, the job's (progress, cancel, TensorBoard) and early stopping;
- ``run``: resume from a checkpoint, train, time it; ``cancelled``, ``eval_history``, ``final_metrics``;
- ``write_model``: the trained model, its tokenizer and llmplay's JSON note of what was trained, in one folder.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
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


def folders(job_dir: Path, output_dir: Path | None) -> tuple[Path, Path]:
    """The job folder and where the finished model goes (default ``job_dir/model``)."""
    job_dir = Path(job_dir)
    return job_dir, Path(output_dir) if output_dir else job_dir / "model"


def job_callbacks(config: TrainConfig, callbacks: Sequence[Any], has_validation: bool) -> list:
    """The Trainer's callbacks: the method's own first (AdaLoRA's allocator logs ranks before the progress row),
    then the job's, then early stopping when asked for and there is a validation set."""
    from transformers import EarlyStoppingCallback

    from llmplay.training.methods import get_method

    out = [*get_method(config.method).callbacks(), *callbacks]
    if config.early_stopping_patience and has_validation:
        out.append(EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience))
    return out


def last_checkpoint(job_dir: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    folder = Path(job_dir) / "checkpoints"
    return get_last_checkpoint(str(folder)) if folder.is_dir() else None


@dataclass
class Run:
    output: Any  # the Trainer's TrainOutput
    train_s: float  # wall-clock seconds of trainer.train
    resume_from: str | None  # the checkpoint it continued from


def run(trainer, job_dir: Path, resume_from: str | bool | None) -> Run:
    """``trainer.train``, continuing from ``resume_from`` (a checkpoint folder, or True for the job's last one)."""
    if resume_from is True:
        resume_from = last_checkpoint(job_dir)
    started = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=resume_from or None)
    return Run(output, time.perf_counter() - started, resume_from or None)


def cancelled(trainer) -> bool:
    """Whether the job's cancel callback stopped the run (a checkpoint was saved; nothing is registered)."""
    from llmplay.training.callbacks import CancelCallback

    cancel = next((c for c in trainer.callback_handler.callbacks if isinstance(c, CancelCallback)), None)
    return cancel is not None and cancel.cancelled


def clean_metrics(logs: dict) -> dict:
    """Trainer metrics without the ``eval_`` prefix and the runtime counters; rounded for storing."""
    out = {}
    for key, value in logs.items():
        name = key.removeprefix("eval_")
        if name in ("runtime", "samples_per_second", "steps_per_second") or not isinstance(value, int | float):
            continue
        out[name] = round(float(value), 6)
    return out


def eval_history(trainer, clean=clean_metrics) -> list[dict]:
    """One entry per evaluation of the run."""
    return [clean(h) for h in trainer.state.log_history if "eval_loss" in h]


def final_metrics(trainer, history: list[dict], clean=clean_metrics) -> dict:
    """The validation metrics of the saved model: the last evaluation when it ran at the last step (and the best
    model is not reloaded at the end), else a fresh evaluation."""
    last = history[-1] if history and history[-1].get("step") == trainer.state.global_step else None
    if last and not trainer.args.load_best_model_at_end:
        return dict(last)
    return clean(trainer.evaluate())


def write_model(model, output_dir: Path, meta_file: str, meta: dict, tokenizer=None, **save_options) -> None:
    """Save ``model`` (safetensors; ``save_options`` go to save_pretrained), the tokenizer if given, and ``meta``
    as ``meta_file``: what was trained, for people and for the registry's checks."""
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(output_dir), safe_serialization=True, **save_options)
    if tokenizer is not None:
        tokenizer.save_pretrained(str(output_dir))
    (output_dir / meta_file).write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
