"""Causal-LM jobs: LoRA (default), AdaLoRA, DoRA and prompt tuning on a chat or base model; task ``sft`` (loss on
the completion only, rows formatted by data.py through the inference render path) or ``cpt`` (continued
pre-training: loss on every token of raw text).

The plain transformers ``Trainer`` runs the loop (AdamW, schedule, gradient accumulation, checkpoints and
resume, evaluation, early stopping, TensorBoard / W&B / MLflow, DDP under torchrun). TRL's SFTTrainer is not
used: its completion-only loss and packing are a few lines here (batching.py), and what makes CPU training
fast on llmplay's templates, computing a batch's shared few-shot prefix once, needs a loss of our own anyway.
``CausalTrainer`` adds two things to the Trainer's step (causal_loss.py):

- the shared prefix (padding ``prefix``, the default): a batch's common prompt prefix runs once, its
  keys/values feed every row's suffix, and the suffixes run in chunks of ~256 tokens (gradients flow back
  through the prefix once, after all chunks);
- logits only where a token is trained: with LoRA / DoRA on a plain-head architecture, the head runs on the
  few trained positions instead of every position (a one-word answer after a 580-token prompt).

Both give the loss and gradient of the plain padded batch (tests/training/test_causal.py checks them). AdaLoRA
(whose orthogonality penalty lives in peft's forward), prompt tuning (peft prepends its virtual tokens) and
data-parallel runs (DDP must see the forward) go through the model's own forward instead.

Measured on the 2-core CPU (bench/finetune.py: 500 FPB rows through the financial-sentiment template, ~580
tokens per row of which ~520 are its system message and six few-shot examples): see TrainConfig's comments.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from transformers import Trainer

from llmplay.settings import Settings
from llmplay.training import causal_model, defaults, scaffold
from llmplay.training.batching import IGNORE_INDEX, CausalCollator
from llmplay.training.callbacks import peak_rss_mb, phase, rank, world_size
from llmplay.training.causal_loss import forward_loss, selective_loss, shared_prefix_backward
from llmplay.training.causal_model import CausalTrainingError
from llmplay.training.config import TrainConfig
from llmplay.training.methods import get_method
from llmplay.training.scaffold import training_arguments, use_bf16

META_FILE = "llmplay_adapter.json"  # what was trained, for people and for the registry's checks
__all__ = ["CausalResult", "CausalTrainer", "CausalTrainingError", "train_causal"]


@dataclass
class CausalResult:
    """What a finished (or stopped) causal job produced; the entry point registers ``output_dir``."""

    output_dir: Path
    kind: str  # always "adapter": a version on top of base_model
    task: str
    base_model: str
    method: str
    metrics: dict[str, float]  # final validation loss/perplexity, training loss, speed and memory
    history: list[dict] = field(default_factory=list)  # one entry per evaluation
    data_hash: str = ""
    row_ids: list = field(default_factory=list)
    parent_id: int | None = None
    train_rows: int = 0
    validation_rows: int = 0
    train_s: float = 0.0
    steps: int = 0
    completed: bool = True  # False when cancelled (a checkpoint was saved); early stopping counts as done
    trainable_params: int = 0
    total_params: int = 0
    padding: str = ""  # the batching actually used (a mode that does not fit the run falls back)
    stack: list[str] = field(default_factory=list)  # adapter folders this one sits on (stack_on_parent), bottom first
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {**asdict(self), "output_dir": str(self.output_dir)}


def total_steps(config: TrainConfig, train_rows: int, processes: int = 1) -> int:
    """Optimizer steps of the run, as the Trainer counts them (given to it as max_steps, and to AdaLoRA)."""
    if config.max_steps > 0:
        return config.max_steps
    size = config.batch_size or defaults.batch_size(train_rows)  # unresolved: as resolve() would scale it
    batches = math.ceil(math.ceil(train_rows / processes) / size)
    per_epoch = max(1, batches // config.grad_accum)
    return max(1, math.ceil(config.epochs * per_epoch))


def batching_mode(config: TrainConfig, model_config, processes: int, notes: list[str]) -> str:
    """The padding mode this run can use: ``prefix`` needs one process (DDP sees one forward per step), no
    gradient checkpointing (it drops the keys/values cache) and full attention; prompt tuning cannot pack."""
    mode = get_method(config.method).batching(config.padding, notes)
    if mode == "prefix":
        window = getattr(model_config, "sliding_window", None)
        reason = None
        if processes > 1:
            reason = "a data-parallel run"
        elif config.gradient_checkpointing:
            reason = "gradient checkpointing"
        elif window and window < config.max_length:
            reason = f"sliding-window attention ({window} tokens)"
        if reason:
            notes.append(f"Shared-prefix batches do not work with {reason}: rows are packed instead.")
            return "pack"
    return mode


class CausalTrainer(Trainer):
    """The Trainer with llmplay's batches (batching.py) and losses (causal_loss.py); see the module docstring."""

    loss_is_scaled_for_ga = True  # the loss is a sum over tokens divided by the whole accumulated batch's count

    def __init__(self, *args, fast_loss: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fast_loss = fast_loss
        self.model_accepts_loss_kwargs = True  # so the Trainer counts num_items_in_batch over accumulated batches

    def _count(self, model, inputs: dict, num_items_in_batch):
        tokens = inputs.pop("num_tokens", None)
        if model.training and tokens is not None:
            self.state.num_input_tokens_seen += int(tokens) * self.accelerator.num_processes
        if num_items_in_batch is not None:
            return num_items_in_batch
        return (inputs["labels"][:, 1:] != IGNORE_INDEX).sum()

    def _part_counts(self, model, inputs: dict, num_items_in_batch):
        tokens = inputs.pop("num_tokens", None)
        if model.training and tokens is not None:
            self.state.num_input_tokens_seen += int(tokens) * self.accelerator.num_processes
        if num_items_in_batch is not None:  # never set for parts (no top-level labels): one batch's own count
            return num_items_in_batch
        return sum((part["labels"][:, 1:] != IGNORE_INDEX).sum() for part in inputs["parts"])

    def training_step(self, model, inputs, num_items_in_batch=None):
        if "parts" in inputs:  # rows of several prompts in one batch (batching.CausalCollator._parts)
            model.train()
            inputs = dict(self._prepare_inputs(inputs))
            count = self._part_counts(model, inputs, num_items_in_batch)
            unwrapped = self.accelerator.unwrap_model(model)
            total = 0.0
            with self.accelerator.autocast():
                for part in inputs["parts"]:
                    if self.fast_loss and "prefix_ids" in part:
                        total += shared_prefix_backward(unwrapped, part, count)
                        continue
                    part = dict(part)
                    loss = (
                        selective_loss(unwrapped, part, count) if self.fast_loss else forward_loss(model, part, count)
                    )
                    self.accelerator.backward(loss)
                    total += loss.detach()
            return total
        if not (self.fast_loss and "prefix_ids" in inputs):
            return super().training_step(model, inputs, num_items_in_batch)
        model.train()
        inputs = dict(self._prepare_inputs(inputs))
        count = self._count(model, inputs, num_items_in_batch)
        with self.accelerator.autocast():
            return shared_prefix_backward(self.accelerator.unwrap_model(model), inputs, count)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = dict(inputs)
        if "parts" in inputs:  # evaluation of a mixed batch: the parts' losses add up
            count = self._part_counts(model, inputs, num_items_in_batch)
            unwrapped = self.accelerator.unwrap_model(model)
            with self.accelerator.autocast():
                losses = [
                    selective_loss(unwrapped, dict(p), count) if self.fast_loss else forward_loss(model, dict(p), count)
                    for p in inputs["parts"]
                ]
            loss = sum(losses)
            return (loss, {}) if return_outputs else loss
        count = self._count(model, inputs, num_items_in_batch)
        if self.fast_loss:
            with self.accelerator.autocast():
                loss = selective_loss(self.accelerator.unwrap_model(model), inputs, count)
        else:
            loss = forward_loss(model, inputs, count)
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes  # the count is over all processes; DDP averages grads
        return (loss, {}) if return_outputs else loss


def training_args(config: TrainConfig, job_dir: Path, has_validation: bool, steps: int, mode: str):
    return training_arguments(
        config,
        job_dir,
        has_validation,
        max_steps=steps,  # computed from epochs (total_steps) so AdaLoRA's schedule and the Trainer agree
        data_seed=config.seed,
        ddp_find_unused_parameters=False,
        train_sampling_strategy="group_by_length" if mode in ("prefix", "group") else "random",
        label_names=["labels"],
        prediction_loss_only=True,
    )


class _Rows:
    """Tokenized examples as a map-style dataset (the Trainer needs only len and indexing)."""

    def __init__(self, examples) -> None:
        self.rows = [{"input_ids": e.input_ids, "labels": e.labels} for e in examples]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        return self.rows[i]


def _orthogonality(config: TrainConfig, stack: list[str], notes: list[str]) -> list:
    """O-LoRA's callback when asked for: the penalty against the stacked adapters' LoRA A matrices."""
    if not config.orthogonal_weight:
        return []
    from llmplay.training.orthogonal import OrthogonalityCallback, load_subspaces

    try:
        subspaces = load_subspaces([Path(folder) for folder in stack])
    except ValueError as exc:
        raise CausalTrainingError(str(exc)) from None
    notes.append(f"O-LoRA: the new adapter is kept orthogonal to {len(stack)} stacked adapter(s)")
    return [OrthogonalityCallback(subspaces, config.orthogonal_weight)]


def train_causal(
    config: TrainConfig,
    settings: Settings,
    job_dir: Path,
    callbacks: Sequence[Any] = (),
    *,
    output_dir: Path | None = None,
    resume_from: str | bool | None = None,
) -> CausalResult:
    """Train ``config`` (task sft or cpt) and save the adapter into ``output_dir`` (default ``job_dir/model``).

    Same calling convention as ``encoder.train_encoder`` (see entry.py). Every check runs before the first step
    and raises an LlmplayError subclass (CausalTrainingError, TrainDataError, UnknownModelError).
    """
    import torch

    from llmplay.training import data as train_data

    causal_model.check_method(config)
    method = get_method(config.method)
    job_dir, output_dir = scaffold.folders(job_dir, output_dir)
    notes: list[str] = []
    phase(callbacks, "reading data", config.data.source)
    loaded_data = train_data.load_rows(config, settings)
    train_rows, val_rows = train_data.split_rows(config, loaded_data)
    phase(callbacks, "loading model", config.base_model)
    base = causal_model.load_base(config, settings)
    phase(callbacks, "tokenizing", f"{len(train_rows) + len(val_rows)} rows")
    train_set = train_data.build_examples(config, base.loaded, train_rows)
    val_set = train_data.build_examples(config, base.loaded, val_rows) if val_rows else []
    _check_examples(config, train_set, notes)
    processes = world_size()
    config = defaults.resolve(config, len(train_set), processes)  # scaled batch size and logging interval
    phase(callbacks, "preparing the adapter", config.method)
    steps = total_steps(config, len(train_set), processes)
    mode = batching_mode(config, base.model.config, processes, notes)
    stack = causal_model.frozen_stack(base, config)
    callbacks = [*_orthogonality(config, stack, notes), *callbacks]
    peft_model = causal_model.wrap(base, config, steps, config.gradient_checkpointing)
    bf16 = use_bf16(config.bf16)
    if bf16:
        causal_model.freeze_base_in_bf16(peft_model)
    trainable, total = causal_model.trainable_parameters(peft_model)
    fast = processes == 1 and method.fast_loss and base.model.config.model_type in causal_model.PLAIN_HEAD_TYPES
    notes += method.notes(config)
    args = training_args(config, job_dir, bool(val_set), steps, mode)
    tokenizer = base.tokenizer
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    trainer = CausalTrainer(
        model=peft_model,
        args=args,
        data_collator=CausalCollator(pad_id=pad_id, mode=mode, max_length=config.max_length),
        train_dataset=_Rows(train_set),
        eval_dataset=_Rows(val_set) if val_set else None,
        callbacks=scaffold.job_callbacks(config, callbacks, bool(val_set)),
        fast_loss=fast,
    )
    done = scaffold.run(trainer, job_dir, resume_from)
    train_s, state = done.train_s, trainer.state
    completed = not scaffold.cancelled(trainer)
    history = scaffold.eval_history(trainer)
    metrics: dict[str, float] = scaffold.final_metrics(trainer, history) if val_set and completed else {}
    if "loss" in metrics:
        metrics["perplexity"] = round(math.exp(min(metrics["loss"], 50)), 4)
    tokens = state.num_input_tokens_seen
    metrics.update(
        train_loss=round(float(done.output.training_loss), 6),
        train_tokens=int(tokens),
        train_tokens_per_s=round(tokens / train_s, 1) if train_s > 0 else 0.0,
        peak_rss_mb=peak_rss_mb(),
    )
    metrics.update(method.metrics(trainer.model))
    if processes > 1:  # every rank says what it ended with: data-parallel ranks must agree
        digest = causal_model.weights_digest(trainer.model)
        (job_dir / f"weights-rank{rank()}.sha256").write_text(digest + "\n", encoding="utf-8")
    if completed and trainer.is_world_process_zero():
        phase(callbacks, "saving", "the adapter")
        with torch.no_grad():
            save_adapter(trainer.model, output_dir, config, loaded_data, metrics, mode, stack)
    return CausalResult(
        output_dir=output_dir,
        kind="adapter",
        task=config.task,
        base_model=config.base_model,
        method=config.method,
        metrics=metrics,
        history=history,
        data_hash=loaded_data.data_hash,
        row_ids=[r.id for r in train_rows],
        parent_id=base.parent.id if base.parent else None,
        train_rows=len(train_set),
        validation_rows=len(val_set),
        train_s=round(train_s, 2),
        steps=state.global_step,
        completed=completed,
        trainable_params=trainable,
        total_params=total,
        padding=mode,
        stack=stack,
        notes=notes,
    )


def _check_examples(config: TrainConfig, examples: list, notes: list[str]) -> None:
    if not examples:
        raise CausalTrainingError("No training rows are left after the validation split: add rows.")
    if not any(any(y != IGNORE_INDEX for y in e.labels) for e in examples):
        raise CausalTrainingError(
            f"No row has a target token left within max_length={config.max_length}: raise max_length."
        )
    truncated = sum(bool(getattr(e, "truncated", False)) for e in examples)
    if truncated:
        notes.append(
            f"{truncated} of {len(examples)} training rows are longer than max_length={config.max_length} tokens "
            "and were truncated (the prompt's start is cut)."
        )


def save_adapter(
    model, output_dir: Path, config: TrainConfig, data, metrics: dict, mode: str, stack: list[str]
) -> None:
    """The adapter (the ``default`` one), the stack it sits on and META_FILE (causal and DPO jobs)."""
    from llmplay.models.adapters import write_stack

    meta = {
        "task": config.task,
        "kind": "adapter",
        "base_model": config.base_model,
        "method": config.method,
        "template": data.template_ref,
        "data_format": data.format,
        "max_length": config.max_length,
        "padding": mode,
        "stack": stack,
        "validation_metrics": {k: v for k, v in metrics.items() if not k.startswith("train_")},
        "data_hash": data.data_hash,
        "config": replace(config, data=replace(config.data, rows=None)).to_dict(),  # inline rows can be large
    }
    scaffold.write_model(model, output_dir, META_FILE, meta, selected_adapters=["default"])
    write_stack(output_dir, stack)
