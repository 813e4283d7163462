"""DPO jobs (task ``dpo``): a LoRA / DoRA adapter trained on preference pairs with TRL's DPOTrainer.

Rows are pairs ``{"prompt", "chosen", "rejected"}``: the prompt as text or chat messages, each reply as text
or one assistant turn (TRL's conversational layout, as llmplay/feedback/exports.py writes it). Sources:
``data.source: rows`` (inline), ``file`` (JSONL / JSON in that layout; CSV / Parquet with those columns) or
``feedback`` (every preference or correction queue's accepted pairs that no training job used yet, through
``feedback.exports.export_rows(db, queue, "dpo")``; row ids are feedback item ids, consumed when the job ends).

Prompts go through the inference render path (``engine.prompt_text.render_prompt``: the tokenizer's chat template
for chat models, raw text for base models) and replies end as the SFT targets do (data.formatted_text), so
the pairs are tokenized here and handed to TRL as ids (``_PretokenizedDPOTrainer`` skips its own
tokenization, which would render chat prompts without llmplay's path).

The reference model is the previous version: TRL scores the reference with the adapter disabled (a fresh
adapter) or with a frozen copy of the adapter it was given ("ref", a continued parent). So:

- no parent: a fresh adapter on the base; reference = the base;
- ``parent_version``: the parent's adapter continues training; reference = TRL's frozen copy of it (the
  parent's own stack, if any, merged into the base first);
- ``parent_version`` + ``stack_on_parent``: the parent merged into the base in memory, a fresh adapter on
  top; reference = adapter disabled = the parent. The version records the parent below it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from llmplay.errors import LlmplayError
from llmplay.settings import Settings
from llmplay.training import causal_model, defaults, scaffold
from llmplay.training.callbacks import peak_rss_mb, phase
from llmplay.training.causal import CausalResult, save_adapter, total_steps
from llmplay.training.config import TrainConfig
from llmplay.training.data_sources import (
    CONSUMER_PREFIX,
    TrainDataError,
    TrainRow,
    pair_records,
    record_ids,
    seeded_subset,
)
from llmplay.training.scaffold import training_arguments, use_bf16
from llmplay.training.tasks.dpo import preference_row_problems, preference_text

__all__ = ["PreferenceData", "load_pairs", "pair_examples", "train_dpo"]


@dataclass
class PreferenceData:
    rows: list[TrainRow]  # messages = the prompt turns, target = chosen, record["rejected"] = rejected
    data_hash: str
    source: str
    format: str = "preference"
    template_ref: str | None = None
    validation_rows: list[TrainRow] | None = None

    @property
    def row_ids(self) -> list:
        return [r.id for r in self.rows]


@dataclass
class PairExample:
    prompt_ids: list[int]
    chosen_ids: list[int]
    rejected_ids: list[int]
    row_id: Any
    truncated: bool = False


# ---- data ---------------------------------------------------------------------------------------------------


def load_pairs(config: TrainConfig, settings: Settings) -> PreferenceData:
    """The preference pairs of ``config.data`` (checked: every problem named, before anything loads)."""
    d = config.data
    if d.source == "rows":
        records, source, first = [dict(r) for r in d.rows or []], "inline rows", 1
    elif d.source == "file":
        records, source, first = pair_records(settings, d.file), f"file {d.file}", 1
    elif d.source == "feedback":
        records, source, first = feedback_pairs(settings), "accepted feedback pairs", 1
    else:
        raise TrainDataError("task dpo trains on preference pairs: set data.source to rows, file or feedback.")
    problems = preference_row_problems(records, first_line=first)
    if problems:
        raise TrainDataError(f"The preference data ({source}) is not usable:\n- " + "\n- ".join(problems))
    ids = record_ids(records)
    keep = seeded_subset(len(records), d.max_rows, config.seed)
    rows = [_pair_row(ids[i], records[i]) for i in keep]
    digest = hashlib.sha256()
    for row in rows:
        content = {"prompt": row.messages, "chosen": row.target, "rejected": row.record["rejected"]}
        digest.update(json.dumps(content, ensure_ascii=False, sort_keys=True).encode() + b"\n")
    return PreferenceData(rows, digest.hexdigest(), source)


def feedback_pairs(settings: Settings) -> list[dict]:
    """Accepted pairs of every preference / correction queue that no training job used yet; ``id`` = item id."""
    from llmplay.feedback.exports import TASKS_FOR, export_rows
    from llmplay.feedback.store import list_queues
    from llmplay.store import connect

    records: list[dict] = []
    with connect(settings.db_path) as db:
        for queue in list_queues(db):
            if queue.task not in TASKS_FOR["dpo"]:
                continue
            export = export_rows(db, queue, "dpo", layout="conversational", unconsumed_by=CONSUMER_PREFIX)
            records += [{"id": item_id, **row} for item_id, row in zip(export.item_ids, export.rows)]
    if not records:
        raise TrainDataError(
            "The feedback store has no accepted preference pairs that a training job has not used yet. Vote in "
            "the Arena or Compare, answer a preference queue, or correct replies first."
        )
    return records


def _pair_row(row_id, record: dict) -> TrainRow:
    prompt = record["prompt"]
    turns = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else [dict(m) for m in prompt]
    turns = [{"role": m.get("role", "user"), "content": m["content"]} for m in turns]
    chosen, rejected = preference_text(record["chosen"]), preference_text(record["rejected"])
    return TrainRow(id=row_id, target=chosen, messages=turns, record={"rejected": rejected})


def pair_examples(config: TrainConfig, loaded, rows: list[TrainRow]) -> list[PairExample]:
    """Token ids of each pair: the prompt as inference renders it, each reply as an SFT target (+ end of turn).
    A pair longer than max_length loses the prompt's start (it keeps at least a quarter of the window)."""
    from llmplay.engine.prompt_text import encode_prompt
    from llmplay.training.data import formatted_text

    tok = loaded.tokenizer
    out = []
    for row in rows:
        try:
            prompt_text, chosen_text = formatted_text(loaded, row)
            _, rejected_text = formatted_text(loaded, replace(row, target=row.record["rejected"]))
        except LlmplayError as exc:
            raise TrainDataError(f"Pair {row.id}: {exc}") from None
        prompt = encode_prompt(loaded, prompt_text)
        chosen = tok(chosen_text, add_special_tokens=False)["input_ids"]
        rejected = tok(rejected_text, add_special_tokens=False)["input_ids"]
        longest = max(len(chosen), len(rejected))
        truncated = len(prompt) + longest > config.max_length
        if truncated:
            keep = max(config.max_length - longest, config.max_length // 4)
            prompt = prompt[-keep:]
            chosen, rejected = chosen[: config.max_length - keep], rejected[: config.max_length - keep]
        out.append(PairExample(prompt, chosen, rejected, row.id, truncated))
    return out


# ---- training -----------------------------------------------------------------------------------------------


def _trainer_class():
    from trl import DPOTrainer

    class _PretokenizedDPOTrainer(DPOTrainer):
        """DPOTrainer on pairs tokenized by pair_examples (the inference render path), not re-tokenized."""

        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            if "prompt_ids" in dataset.column_names:
                return dataset
            return super()._prepare_dataset(dataset, processing_class, args, dataset_name)

    return _PretokenizedDPOTrainer


def _dataset(examples: list[PairExample]):
    from datasets import Dataset

    return Dataset.from_dict(
        {
            "prompt_ids": [e.prompt_ids for e in examples],
            "chosen_ids": [e.chosen_ids for e in examples],
            "rejected_ids": [e.rejected_ids for e in examples],
        }
    )


def train_dpo(
    config: TrainConfig,
    settings: Settings,
    job_dir: Path,
    callbacks: Sequence[Any] = (),
    *,
    output_dir: Path | None = None,
    resume_from: str | bool | None = None,
) -> CausalResult:
    """Train ``config`` (task dpo) and save the adapter into ``output_dir`` (default ``job_dir/model``); the same
    calling convention and result as causal.train_causal. Every check runs before the first step."""
    import torch
    from trl import DPOConfig

    from llmplay.training.data import TrainData, split_rows

    if config.task != "dpo":
        raise causal_model.CausalTrainingError(f"train_dpo trains task dpo; got {config.task!r}.")
    job_dir, output_dir = scaffold.folders(job_dir, output_dir)
    notes: list[str] = []
    phase(callbacks, "reading data", config.data.source)
    pairs = load_pairs(config, settings)
    train_rows, val_rows = split_rows(config, TrainData(pairs.rows, pairs.data_hash, pairs.source, pairs.format))
    phase(callbacks, "loading model", config.base_model)
    base = causal_model.load_base(config, settings)
    phase(callbacks, "tokenizing", f"{len(train_rows) + len(val_rows)} pairs")
    train_set = pair_examples(config, base.loaded, train_rows)
    val_set = pair_examples(config, base.loaded, val_rows) if val_rows else []
    if not train_set:
        raise causal_model.CausalTrainingError("No preference pairs are left after the validation split: add pairs.")
    config = defaults.resolve(config, len(train_set))  # scaled batch size and logging interval
    phase(callbacks, "preparing the adapter", config.method)
    truncated = sum(e.truncated for e in train_set)
    if truncated:
        notes.append(f"{truncated} of {len(train_set)} pairs are longer than max_length={config.max_length} tokens.")
    steps = total_steps(config, len(train_set))
    stack = causal_model.frozen_stack(base, config)
    peft_model = causal_model.wrap(base, config, steps)  # a continued parent: TRL copies it as the reference
    bf16 = use_bf16(config.bf16)
    if bf16:
        causal_model.freeze_base_in_bf16(peft_model)
    trainable, total = causal_model.trainable_parameters(peft_model)
    args = training_arguments(
        config,
        job_dir,
        bool(val_set),
        args_class=DPOConfig,
        max_steps=steps,
        data_seed=config.seed,
        beta=config.dpo_beta,
        max_length=config.max_length,
        gradient_checkpointing=config.gradient_checkpointing,
        precompute_ref_log_probs=False,
        ddp_find_unused_parameters=False,
    )
    tokenizer = base.tokenizer
    trainer = _trainer_class()(
        model=peft_model,
        ref_model=None,
        args=args,
        train_dataset=_dataset(train_set),
        eval_dataset=_dataset(val_set) if val_set else None,
        processing_class=tokenizer,
        callbacks=scaffold.job_callbacks(config, callbacks, bool(val_set)),
    )
    done = scaffold.run(trainer, job_dir, resume_from)
    state = trainer.state
    completed = not scaffold.cancelled(trainer)
    history = scaffold.eval_history(trainer)
    metrics: dict[str, float] = scaffold.final_metrics(trainer, history) if val_set and completed else {}
    metrics.update(
        train_loss=round(float(done.output.training_loss), 6),
        train_pairs=len(train_set),
        peak_rss_mb=peak_rss_mb(),
    )
    if completed and trainer.is_world_process_zero():
        phase(callbacks, "saving", "the adapter")
        with torch.no_grad():
            save_adapter(trainer.model, output_dir, config, pairs, metrics, "pad", stack)
    if not math.isfinite(metrics["train_loss"]):
        notes.append("The DPO loss is not a finite number: lower learning_rate.")
    return CausalResult(
        output_dir=output_dir,
        kind="adapter",
        task=config.task,
        base_model=config.base_model,
        method=config.method,
        metrics=metrics,
        history=history,
        data_hash=pairs.data_hash,
        row_ids=[r.id for r in train_rows],
        parent_id=base.parent.id if base.parent else None,
        train_rows=len(train_set),
        validation_rows=len(val_set),
        train_s=round(done.train_s, 2),
        steps=state.global_step,
        completed=completed,
        trainable_params=trainable,
        total_params=total,
        padding="pad",
        stack=stack,
        notes=notes,
    )
