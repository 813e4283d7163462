"""The one training configuration: a validated dataclass shared by the UI, `llmplay train` and the loop.

A YAML file (or the Train tab's form) becomes a ``TrainConfig`` through ``TrainConfig.from_dict``, which
reports every problem at once; nothing starts until it validates. Defaults are the measured CPU defaults
(bench/finetune.py, bench/finetune_encoder.py).

``TrainConfig`` is flat, as the YAML files are: the job's own fields (below) plus the fields each registered
method and task declares (``methods/``, ``tasks/``: ``lora_r`` comes from methods/lora.py, ``dpo_beta`` from
tasks/dpo.py). Each method and task checks its own fields; ``validate`` checks the rest.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from llmplay.training import checks
from llmplay.training.checks import TrainConfigError
from llmplay.training.methods import METHODS as METHOD_REGISTRY
from llmplay.training.methods import get_method
from llmplay.training.tasks import CAUSAL, ENCODER, get_task, task_names
from llmplay.training.tasks import TASKS as TASK_REGISTRY

TASKS = task_names()
# causal LMs: supervised fine-tuning (completion-only loss), continued pre-training, DPO on preference pairs
CAUSAL_TASKS = task_names(CAUSAL)
ENCODER_TASKS = task_names(ENCODER)  # BERT-family encoders
METHODS = METHOD_REGISTRY.names()
DATA_SOURCES = ("dataset", "file", "feedback", "rows")
FILE_FORMATS = ("auto", "prompt_completion", "messages", "alpaca", "text", "classification", "conll")
SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup")
# Cut padding: compute a batch's shared prompt prefix once (else pack), pack rows, length-grouped batches, or plain
# padded (batching.py). Encoders have no shared prefix to cut; for them prefix and pack mean length-grouped.
PADDING = ("prefix", "pack", "group", "pad")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
__all__ = ["DataConfig", "TrainConfig", "TrainConfigError"]


@dataclass
class DataConfig:
    # dataset: a saved evaluation dataset (or builtin:<sample>) rendered through `template`, target = its
    #   reference column; file: an uploaded file; feedback: accepted corrections (feedback store); rows: inline.
    source: str = "dataset"
    dataset: str | None = None
    template: str | None = None  # template name, or name@vN; sft from a dataset needs one
    file: str | None = None
    format: str = "auto"  # how to read `file` (auto = from its columns)
    rows: list[dict] | None = None  # source "rows": inline rows (the loop and tests pass them directly)
    # Column names where the source's own differ: classification text/label, NER tokens/tags.
    text_column: str | None = None
    label_column: str | None = None
    labels: list[str] | None = None  # classification / NER label set (default: from the data)
    validation_fraction: float = 0.1  # seeded split of the rows; 0 = no validation set
    validation_dataset: str | None = None  # or a separate saved dataset for validation
    max_rows: int | None = None  # use at most this many rows (seeded sample)


@dataclass
class JobFields:
    """The fields every job has, whatever its task and method (the first of TrainConfig's fields)."""

    name: str  # the version line this trains, e.g. "fpb-lora"; each finished job adds version N+1
    base_model: str  # catalog name of the model to train, e.g. smollm2-135m-instruct or all-minilm-l6-v2
    task: str = "sft"
    method: str = "lora"
    data: DataConfig = field(default_factory=DataConfig)
    parent_version: str | None = None  # continue training from this version ("name vN") instead of the base
    # With a parent_version: merge the parent (frozen) into the base and train a fresh adapter on top, so only new
    # parameters change (against forgetting); the saved version records the parent below it (models/adapters.py).
    stack_on_parent: bool = False
    # O-LoRA (Wang et al., 2023): with stack_on_parent, keep the new LoRA's input subspace orthogonal to the stacked
    # adapters' (weight of the penalty on |A_earlier A_new^T|^2; 0 = off), so the new task disturbs the old less.
    orthogonal_weight: float = 0.0


@dataclass(kw_only=True)
class TrainingFields:
    """Optimisation, batching, evaluation and logging (the last of TrainConfig's fields)."""

    # Optimisation (AdamW).
    learning_rate: float = 2e-4
    lr_scheduler: str = "linear"
    epochs: float = 2.0
    max_steps: int = -1  # > 0 overrides epochs
    # With padding prefix the rows of a batch share one pass over the prompt prefix: 16 FPB rows per step take ~9 s
    # of CPU time, 8 rows ~7 s, so larger batches train more rows per second (memory stays flat: chunked suffixes).
    # None: scaled to the data (defaults.py: 16 from 64 rows up, as the bench chose for 500; 4 for 20 rows).
    batch_size: int | None = None
    grad_accum: int = 1
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    max_length: int = 1024  # tokens per row; longer rows are truncated (counted in the preview). A few-shot template
    # row is ~600 tokens; the batching cuts the padding, so a long limit costs nothing for short rows.
    seed: int = 42
    bf16: str = "auto"  # auto (where the CPU/GPU has bf16) | true | false: autocast
    gradient_checkpointing: bool = False
    # prefix: 5.0x the training tokens/s of plain padded batches on FPB rows (1,500 vs 298; pack = pad there, as
    # two 580-token rows do not fit one 1,024-token row), same loss and gradient (tests/training/test_causal.py).
    padding: str = "prefix"
    early_stopping_patience: int = 0  # evaluations without a better validation loss before stopping; 0 = off
    eval_steps: int = 0  # evaluate every N steps; 0 = once per epoch
    logging_steps: int | None = None  # None: every step up to 50 steps, then ~50 points (defaults.py)
    save_steps: int = 0  # checkpoint every N steps; 0 = once per epoch (cancel always saves one)
    report_to: list[str] = field(default_factory=list)  # extra trackers: wandb, mlflow (TensorBoard always)


def _parts() -> tuple[type, ...]:
    """TrainConfig's bases. A dataclass lists its bases' fields in reverse MRO order, so the parts are given
    last-first: the job's fields, then each task's and each method's (registration order), then training's."""
    parts = [*TASK_REGISTRY.option_classes(), *METHOD_REGISTRY.option_classes()]
    return (TrainingFields, *reversed(parts), JobFields)


@dataclass
class TrainConfig(*_parts()):
    """A training job: JobFields, then the fields of each registered task and method (e.g. dpo_beta; lora_r,
    lora_alpha, lora_dropout, target_modules; adalora_*; num_virtual_tokens; freeze_layers), then
    TrainingFields. All flat, as in the YAML files."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        if not isinstance(data, dict):
            raise TrainConfigError([f"a training config is a mapping of settings; got {type(data).__name__}"])
        problems: list[str] = []
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            problems.append(f"unknown setting(s): {', '.join(map(str, unknown))} (known: {', '.join(sorted(known))})")
        values = {k: v for k, v in data.items() if k in known}
        raw_data = values.pop("data", None) or {}
        if not isinstance(raw_data, dict):
            problems.append("data must be a mapping (source, dataset, template, file, ...)")
            raw_data = {}
        data_known = {f.name for f in fields(DataConfig)}
        bad = sorted(set(raw_data) - data_known)
        if bad:
            problems.append(
                f"unknown data setting(s): {', '.join(map(str, bad))} (known: {', '.join(sorted(data_known))})"
            )
        for missing in ("name", "base_model"):
            if missing not in values:
                problems.append(f"{missing} is required")
        if problems:
            raise TrainConfigError(problems)
        config = cls(**values, data=DataConfig(**{k: v for k, v in raw_data.items() if k in data_known}))
        config.validate()
        return config

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def is_encoder(self) -> bool:
        return self.task in ENCODER_TASKS

    @property
    def uses_peft(self) -> bool:
        return self.method in METHODS and get_method(self.method).peft

    def validate(self) -> None:
        """Raise TrainConfigError naming every problem. Checks that need the model (target modules exist, the
        base matches a parent version) live in the trainer's preflight, still before anything trains."""
        p: list[str] = []
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            p.append(f"name must be 1-64 letters, digits, '.', '_' or '-'; got {str(self.name)[:80]!r}")
        if not isinstance(self.base_model, str) or not self.base_model.strip():
            p.append("base_model must name a catalog model")
        checks.choice(p, "task", self.task, TASKS)
        checks.choice(p, "method", self.method, METHODS)
        checks.choice(p, "lr_scheduler", self.lr_scheduler, SCHEDULERS)
        checks.choice(p, "padding", self.padding, PADDING)
        if str(self.bf16).lower() not in ("auto", "true", "false"):
            p.append(f"bf16 must be auto, true or false; got {str(self.bf16)[:40]!r}")
        for plugin in [*METHOD_REGISTRY.all(), *TASK_REGISTRY.all()]:  # their fields exist in every config
            if plugin.options is not None:  # the owner checks a field (dora uses lora's)
                plugin.check_options(self, p)
        checks.number(p, "learning_rate", self.learning_rate, 1e-8, 1.0)
        checks.number(p, "epochs", self.epochs, 0.01, 1000)
        checks.integer(p, "max_steps", self.max_steps, -1, 10**7)
        if self.batch_size is not None:  # None: scaled to the data when the job starts
            checks.integer(p, "batch_size", self.batch_size, 1, 1024)
        checks.integer(p, "grad_accum", self.grad_accum, 1, 1024)
        checks.number(p, "warmup_ratio", self.warmup_ratio, 0.0, 0.5)
        checks.number(p, "weight_decay", self.weight_decay, 0.0, 1.0)
        checks.integer(p, "max_length", self.max_length, 8, 32768)
        checks.integer(p, "seed", self.seed, 0, 2**32 - 1)
        if not isinstance(self.gradient_checkpointing, bool):
            p.append("gradient_checkpointing must be true or false")
        _check_stacking(p, self)
        checks.integer(p, "early_stopping_patience", self.early_stopping_patience, 0, 1000)
        checks.integer(p, "eval_steps", self.eval_steps, 0, 10**7)
        if self.logging_steps is not None:
            checks.integer(p, "logging_steps", self.logging_steps, 1, 10**6)
        checks.integer(p, "save_steps", self.save_steps, 0, 10**7)
        if not (isinstance(self.report_to, list) and set(self.report_to) <= {"wandb", "mlflow"}):
            p.append("report_to must be a list of: wandb, mlflow (TensorBoard files are always written)")
        d = self.data
        checks.choice(p, "data.source", d.source, DATA_SOURCES)
        checks.choice(p, "data.format", d.format, FILE_FORMATS)
        if d.source == "dataset" and not d.dataset:
            p.append("data.dataset must name a saved dataset (or builtin:<sample>) when data.source is dataset")
        if self.task in TASKS:
            get_task(self.task).check(self, p)  # its method and data settings
        if d.source == "file" and not d.file:
            p.append("data.file is required when data.source is file")
        if d.source == "rows" and not (isinstance(d.rows, list) and all(isinstance(r, dict) for r in d.rows)):
            p.append("data.rows must be a list of mappings when data.source is rows")
        checks.number(p, "data.validation_fraction", d.validation_fraction, 0.0, 0.5)
        if d.max_rows is not None:
            checks.integer(p, "data.max_rows", d.max_rows, 1, 10**7)
        if d.labels is not None and not checks.str_list(d.labels):
            p.append("data.labels must be a list of label names")
        if p:
            raise TrainConfigError(p)


def _check_stacking(p: list[str], c: TrainConfig) -> None:
    if not isinstance(c.stack_on_parent, bool):
        p.append("stack_on_parent must be true or false")
    elif c.stack_on_parent:
        if not c.parent_version:
            p.append("stack_on_parent needs a parent_version: the adapter the new one is stacked on")
        stackable = [m.name for m in METHOD_REGISTRY.all() if m.stackable]
        if c.method not in stackable:
            p.append(
                f"stack_on_parent trains a new {checks.or_list(stackable)} adapter; method is {str(c.method)[:40]!r}"
            )
    checks.number(p, "orthogonal_weight", c.orthogonal_weight, 0.0, 1000.0)
    if isinstance(c.orthogonal_weight, int | float) and c.orthogonal_weight > 0:
        if c.stack_on_parent is not True:
            p.append("orthogonal_weight (O-LoRA) needs stack_on_parent: the earlier adapters it keeps away from")
        elif c.method not in ("lora", "dora"):
            p.append(f"orthogonal_weight (O-LoRA) trains a LoRA or DoRA adapter; method is {str(c.method)[:40]!r}")
