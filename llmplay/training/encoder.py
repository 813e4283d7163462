"""Encoder jobs, the classic recipe: a BERT-family encoder with a fresh task head, AdamW, small batches.

Tasks: ``classification`` (sequence classification: sentiment, intent), ``ner`` (token classification with BIO
tags; each word's tag sits on its first sub-token, the other sub-tokens are -100 and carry no loss) and ``mlm``
(masked-LM continued pre-training on raw text: domain adaptation before a task). Methods: ``full`` (everything
trains, except the embeddings and the lowest ``freeze_layers`` layers when set) or ``lora`` (low-rank updates
on the encoder, the head trained in full through ``modules_to_save``; merged into the saved weights). What is a
task's own (head, rows, tokenizing, collator, metrics, preview) its module in ``tasks/`` supplies (``EncoderTask``
hooks); this module is the trainer they share.

``train_encoder`` is what ``llmplay.training.entry`` runs for ``config.is_encoder`` jobs. It evaluates on the
validation rows each epoch (accuracy and macro-F1; seqeval entity F1; masked-LM loss) and saves a stand-alone
folder (config with id2label/label2id, safetensors weights, tokenizer) that the encoder provider
(``llmplay.engine.encoder``) serves as a catalog model of kind ``classifier`` or ``tagger``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llmplay.errors import LlmplayError
from llmplay.settings import Settings
from llmplay.training import defaults, scaffold
from llmplay.training.callbacks import phase
from llmplay.training.config import TrainConfig
from llmplay.training.encoder_data import EncoderData, load_encoder_data
from llmplay.training.encoder_model import build_model, resolve_encoder, trainable_parameters
from llmplay.training.methods import get_method
from llmplay.training.scaffold import training_arguments
from llmplay.training.tasks import get_task

META_FILE = "llmplay_encoder.json"  # what was trained, for people and for the provider's checks


class EncoderTrainingError(LlmplayError):
    pass


@dataclass
class EncoderResult:
    """What a finished (or stopped) encoder job produced; the entry point registers ``output_dir``."""

    output_dir: Path  # written only when ``completed``
    kind: str  # classifier | tagger (a catalog model of its own) | encoder (mlm: a base for later tasks)
    task: str
    base_model: str
    method: str
    labels: list[str]
    metrics: dict[str, float]  # final validation metrics (accuracy/macro_f1, entity_f1, loss...), train_loss
    history: list[dict] = field(default_factory=list)  # one entry per evaluation (epoch or eval_steps)
    data_hash: str = ""
    row_ids: list = field(default_factory=list)
    parent_id: int | None = None
    train_rows: int = 0
    validation_rows: int = 0
    train_s: float = 0.0  # the Trainer's wall time, its evaluations included
    eval_s: float = 0.0  # of which evaluating
    steps: int = 0
    completed: bool = True  # False when a callback stopped training early (cancel); early stopping counts as done
    trainable_params: int = 0
    total_params: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {**asdict(self), "output_dir": str(self.output_dir)}


def train_encoder(
    config: TrainConfig,
    settings: Settings,
    job_dir: Path,
    callbacks: Sequence[Any] = (),
    *,
    output_dir: Path | None = None,
    resume_from: str | bool | None = None,
) -> EncoderResult:
    """Train ``config`` (an encoder task) and save the model into ``output_dir`` (default ``job_dir/model``).

    ``callbacks``: Trainer callbacks (progress rows, cancel, TensorBoard; llmplay.training.callbacks). Checkpoints
    go to ``job_dir/checkpoints``; ``resume_from`` (a checkpoint folder, or True for the last one there)
    continues an interrupted job. Every check that needs data or the model runs before the first step and
    raises an LlmplayError subclass with a message a user can act on.
    """
    import torch
    from transformers import Trainer

    if not config.is_encoder:
        raise EncoderTrainingError(f"Task {config.task!r} is not an encoder task (classification, ner or mlm).")
    method, task = get_method(config.method), get_task(config.task)
    job_dir, output_dir = scaffold.folders(job_dir, output_dir)
    phase(callbacks, "reading data", config.data.source)
    data = load_encoder_data(config, settings)
    config = defaults.resolve(config, len(data.train))  # scaled batch size and logging interval
    phase(callbacks, "loading model", config.base_model)
    base = resolve_encoder(config, settings)
    if base.labels and base.labels != data.labels:
        raise EncoderTrainingError(
            f"Version {config.parent_version!r} predicts {', '.join(base.labels)}; this data has "
            f"{', '.join(data.labels)}. Continue from a version with the same labels, or start from the base model."
        )
    if config.freeze_layers and method.peft:
        raise EncoderTrainingError(
            "freeze_layers applies to method full; with LoRA the encoder is frozen already (set it to 0)."
        )
    model, tokenizer = build_model(config.task, base.folder, data.labels)
    model = method.encoder_model(model, config)  # full: lower layers frozen; lora: a peft model
    trainable, total = trainable_parameters(model)
    phase(callbacks, "tokenizing", f"{len(data.train) + len(data.validation or [])} rows")
    train_set = _encode(config, tokenizer, data.train, data.labels)
    val_set = _encode(config, tokenizer, data.validation, data.labels) if data.validation else None
    notes = list(data.notes)
    truncated = sum(r["truncated"] for r in train_set)
    if truncated:
        notes.append(f"{truncated} of {len(train_set)} training rows are longer than max_length and were truncated.")
    args = _training_args(config, job_dir, has_validation=val_set is not None)
    compute_metrics = task.metrics(data.labels)  # None: the evaluation loss only (mlm)
    trainer = Trainer(
        model=model,
        args=args,
        data_collator=task.collator(tokenizer, config.seed),
        train_dataset=_Rows(train_set),
        eval_dataset=_Rows(val_set) if val_set is not None else None,
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
        preprocess_logits_for_metrics=_argmax if compute_metrics is not None else None,
        callbacks=scaffold.job_callbacks(config, callbacks, val_set is not None),
    )
    done = scaffold.run(trainer, job_dir, resume_from)
    train_s, state = done.train_s, trainer.state
    completed = state.global_step >= state.max_steps or _stopped_early(trainer)

    def clean(logs: dict) -> dict:  # the scaffold's cleaned metrics and the task's own (mlm: perplexity)
        return task.add_metrics(scaffold.clean_metrics(logs))

    history = scaffold.eval_history(trainer, clean)
    metrics = {}
    if completed:  # a cancelled job keeps its checkpoint (Resume) and saves no model
        if val_set is not None:  # the last evaluation, unless training ended between two of them
            metrics = scaffold.final_metrics(trainer, history, clean)
        summary = next((h for h in reversed(state.log_history) if "train_loss" in h), {})
        if "train_loss" in summary:
            metrics["train_loss"] = round(float(summary["train_loss"]), 6)
        if state.num_input_tokens_seen and train_s > 0 and not done.resume_from:  # real tokens (no padding) per second
            metrics["train_tokens_per_s"] = round(state.num_input_tokens_seen / train_s, 1)
        if trainer.is_world_process_zero():  # under torchrun every rank trains; one writes the files
            phase(callbacks, "saving", "the model")
            final = method.encoder_to_save(trainer.model)
            with torch.no_grad():
                _save(final, tokenizer, output_dir, config, data, metrics)
    return EncoderResult(
        output_dir=output_dir,
        kind=task.kind,
        task=config.task,
        base_model=config.base_model,
        method=config.method,
        labels=data.labels,
        metrics=metrics,
        history=history,
        data_hash=data.data_hash,
        row_ids=data.row_ids,
        parent_id=base.parent_id,
        train_rows=len(data.train),
        validation_rows=len(data.validation),
        train_s=round(train_s, 2),
        eval_s=round(sum(h.get("eval_runtime", 0.0) for h in state.log_history), 2),
        steps=state.global_step,
        completed=completed,
        trainable_params=trainable,
        total_params=total,
        notes=notes,
    )


def encoder_preview(config: TrainConfig, settings: Settings, n: int = 3):
    """What an encoder job would train on, before it starts (the Train tab's preview; ``data.DataPreview``):
    a few rows with the trained part (label, tags) marked, token lengths, rows cut at max_length, split sizes."""
    from transformers import AutoTokenizer

    from llmplay.training.data import TRAINED_MARKERS, DataPreview, PreviewExample

    task = get_task(config.task)
    data = load_encoder_data(config, settings)
    tokenizer = AutoTokenizer.from_pretrained(resolve_encoder(config, settings).folder, trust_remote_code=False)
    rows = data.train + data.validation
    lengths = [task.token_length(tokenizer, r) for r in rows]
    examples = []
    for row, length in list(zip(rows, lengths))[:n]:
        segments = task.preview_segments(row)
        text = "".join(
            f"{TRAINED_MARKERS[0]}{s['text']}{TRAINED_MARKERS[1]}" if s["trained"] else s["text"] for s in segments
        )
        examples.append(PreviewExample(row["id"], segments, text, length, length > config.max_length))
    truncated = sum(length > config.max_length for length in lengths)
    warnings = list(data.notes)
    if truncated:
        warnings.append(
            f"{truncated} of {len(rows)} rows are longer than max_length={config.max_length} tokens and will be "
            "truncated (NER: the words past it are not trained); raise max_length to keep them whole."
        )
    if not data.validation:
        warnings.append("No validation rows: per-epoch metrics and early stopping need data.validation_fraction > 0.")
    ordered = sorted(lengths)
    stats = {"min": 0, "median": 0, "p95": 0, "max": 0}
    if ordered:
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        stats = {"min": ordered[0], "median": ordered[len(ordered) // 2], "p95": p95, "max": ordered[-1]}
    return DataPreview(
        examples=examples,
        rows=len(rows),
        train_rows=len(data.train),
        validation_rows=len(data.validation),
        token_stats=stats,
        truncated=truncated,
        max_length=config.max_length,
        format=config.task,
        source=data.source,
        data_hash=data.data_hash,
        warnings=warnings,
    )


# ---- data -----------------------------------------------------------------------------------------------------


class _Rows:
    """A list of tokenized rows as a map-style dataset (the Trainer needs only len and indexing)."""

    def __init__(self, rows: list[dict]):
        self.rows = [{k: v for k, v in r.items() if k != "truncated"} for r in rows]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        return self.rows[i]


def _encode(config: TrainConfig, tokenizer, rows: list[dict], labels: list[str]) -> list[dict]:
    """Token ids (and labels) per row, cut at ``max_length``; ``truncated`` marks rows that lost tokens."""
    index = {label: i for i, label in enumerate(labels)}
    # Never past the encoder's own positions (MiniLM: 512), whatever max_length the config asks for.
    limit = min(config.max_length, int(getattr(tokenizer, "model_max_length", None) or config.max_length))
    task = get_task(config.task)
    return [task.encode(tokenizer, row, index, limit) for row in rows]


# ---- training arguments --------------------------------------------------------------------------------------


def _training_args(config: TrainConfig, job_dir: Path, has_validation: bool):
    return training_arguments(
        config,
        job_dir,
        has_validation,
        per_device_eval_batch_size=max(config.batch_size, 32),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        activation_checkpointing=config.gradient_checkpointing or None,
        # Random batches unless "group" is asked for: length-grouped batches cut padding but cost accuracy
        # (CoNLL NER, 1 epoch at lr 1e-4: entity F1 0.685 grouped vs 0.771 random, bench/finetune_encoder.py),
        # and sentences are short, so there is little padding to cut. prefix / pack mean nothing for an encoder.
        train_sampling_strategy="group_by_length" if config.padding == "group" else "random",
        include_num_input_tokens_seen="non_padding",  # tokens/s in the progress rows counts real tokens
    )


def _argmax(logits, labels):
    return logits.argmax(dim=-1)


def _stopped_early(trainer) -> bool:
    from transformers import EarlyStoppingCallback

    return any(
        isinstance(cb, EarlyStoppingCallback) and cb.early_stopping_patience_counter >= cb.early_stopping_patience
        for cb in trainer.callback_handler.callbacks
    )


def _save(model, tokenizer, output_dir: Path, config: TrainConfig, data: EncoderData, metrics: dict) -> None:
    meta = {
        "task": config.task,
        "kind": get_task(config.task).kind,
        "base_model": config.base_model,
        "method": config.method,
        "labels": data.labels,
        "max_length": config.max_length,
        "validation_metrics": metrics,
        "data_hash": data.data_hash,
    }
    scaffold.write_model(model, output_dir, META_FILE, meta, tokenizer=tokenizer)
