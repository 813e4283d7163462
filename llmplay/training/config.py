"""The one training configuration: a validated dataclass shared by the UI, `llmplay train` and the loop.

A YAML file (or the Train tab's form) becomes a ``TrainConfig`` through ``TrainConfig.from_dict``, which
reports every problem at once; nothing starts until it validates. Defaults are the measured CPU defaults
(bench/finetune.py, bench/finetune_encoder.py).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from llmplay.errors import LlmplayError

TASKS = ("sft", "cpt", "dpo", "classification", "ner", "mlm")
# causal LMs: supervised fine-tuning (completion-only loss), continued pre-training, DPO on preference pairs
CAUSAL_TASKS = ("sft", "cpt", "dpo")
ENCODER_TASKS = ("classification", "ner", "mlm")  # BERT-family encoders
METHODS = ("lora", "adalora", "dora", "prompt_tuning", "full")
DATA_SOURCES = ("dataset", "file", "feedback", "rows")
FILE_FORMATS = ("auto", "prompt_completion", "messages", "alpaca", "text", "classification", "conll")
SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup")
# Cut padding: compute a batch's shared prompt prefix once (else pack), pack rows, length-grouped batches, or plain
# padded (batching.py). Encoders have no shared prefix to cut; for them prefix and pack mean length-grouped.
PADDING = ("prefix", "pack", "group", "pad")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class TrainConfigError(LlmplayError):
    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("Training config is not valid:\n- " + "\n- ".join(problems))


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
class TrainConfig:
    name: str  # the version line this trains, e.g. "fpb-lora"; each finished job adds version N+1
    base_model: str  # catalog name of the model to train, e.g. smollm2-135m-instruct or all-minilm-l6-v2
    task: str = "sft"
    method: str = "lora"
    data: DataConfig = field(default_factory=DataConfig)
    parent_version: str | None = None  # continue training from this version ("name vN") instead of the base
    # With a parent_version: merge the parent (frozen) into the base and train a fresh adapter on top, so only new
    # parameters change (against forgetting); the saved version records the parent below it (models/adapters.py).
    stack_on_parent: bool = False
    # DPO (task dpo): the strength of the pull toward the reference (the parent version, else the base); TRL's default.
    dpo_beta: float = 0.1
    # LoRA family. alpha = 2r and all linear layers follow Biderman et al. 2024. Measured (bench/finetune.py, quiet
    # 2-core CPU, SmolLM2 on 500 FPB rows through the financial-sentiment template, 300 held-out rows): with these
    # defaults 91.3% greedy accuracy (95% CI 87.7-94.3; base 33.0%; 87.7% after epoch 1) in 367 s of training,
    # 1,534 training tokens/s, peak RSS 2.7 GB. Dropout 0: with dropout every LoRA input is stored twice
    # (activations are most of the memory) and each step does more work; the run above shows no overfitting to fix.
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    target_modules: str | list[str] = "default"  # default (per architecture) | all-linear | a list of names
    # AdaLoRA: ranks start at init_r and are pruned toward target_r between tinit and total - tfinal steps.
    adalora_init_r: int = 12
    adalora_target_r: int = 4
    adalora_tinit: int = 0
    adalora_tfinal: int = 0
    adalora_delta_t: int = 1
    # Prompt tuning: trainable virtual tokens, the rest of the model frozen.
    num_virtual_tokens: int = 16
    # Encoders: freeze the embeddings and the lowest N layers (method "full"); the head always trains.
    freeze_layers: int = 0
    # Optimisation (AdamW).
    learning_rate: float = 2e-4
    lr_scheduler: str = "linear"
    epochs: float = 2.0
    max_steps: int = -1  # > 0 overrides epochs
    # With padding prefix the rows of a batch share one pass over the prompt prefix: 16 FPB rows per step take ~9 s
    # of CPU time, 8 rows ~7 s, so larger batches train more rows per second (memory stays flat: chunked suffixes).
    batch_size: int = 16
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
    logging_steps: int = 5
    save_steps: int = 0  # checkpoint every N steps; 0 = once per epoch (cancel always saves one)
    report_to: list[str] = field(default_factory=list)  # extra trackers: wandb, mlflow (TensorBoard always)

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
        return self.method != "full"

    def validate(self) -> None:
        """Raise TrainConfigError naming every problem. Checks that need the model (target modules exist, the
        base matches a parent version) live in the trainer's preflight, still before anything trains."""
        p: list[str] = []
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            p.append(f"name must be 1-64 letters, digits, '.', '_' or '-'; got {str(self.name)[:80]!r}")
        if not isinstance(self.base_model, str) or not self.base_model.strip():
            p.append("base_model must name a catalog model")
        _choice(p, "task", self.task, TASKS)
        _choice(p, "method", self.method, METHODS)
        _choice(p, "lr_scheduler", self.lr_scheduler, SCHEDULERS)
        _choice(p, "padding", self.padding, PADDING)
        if str(self.bf16).lower() not in ("auto", "true", "false"):
            p.append(f"bf16 must be auto, true or false; got {str(self.bf16)[:40]!r}")
        if self.task in ENCODER_TASKS and self.method in ("adalora", "dora", "prompt_tuning"):
            p.append(f"encoder task {self.task!r} supports method full (with freeze_layers) or lora")
        _int(p, "lora_r", self.lora_r, 1, 1024)
        _int(p, "lora_alpha", self.lora_alpha, 1, 4096)
        _float(p, "lora_dropout", self.lora_dropout, 0.0, 0.9)
        if not (self.target_modules in ("default", "all-linear") or _str_list(self.target_modules)):
            p.append("target_modules must be 'default', 'all-linear' or a list of module names")
        _int(p, "adalora_init_r", self.adalora_init_r, 1, 1024)
        _int(p, "adalora_target_r", self.adalora_target_r, 1, 1024)
        ranks = (self.adalora_init_r, self.adalora_target_r)
        if all(isinstance(r, int) for r in ranks) and ranks[1] > ranks[0]:
            p.append("adalora_target_r must not exceed adalora_init_r")
        _int(p, "adalora_tinit", self.adalora_tinit, 0, 10**7)
        _int(p, "adalora_tfinal", self.adalora_tfinal, 0, 10**7)
        _int(p, "adalora_delta_t", self.adalora_delta_t, 1, 10**6)
        _int(p, "num_virtual_tokens", self.num_virtual_tokens, 1, 512)
        _int(p, "freeze_layers", self.freeze_layers, 0, 1000)
        _float(p, "learning_rate", self.learning_rate, 1e-8, 1.0)
        _float(p, "epochs", self.epochs, 0.01, 1000)
        _int(p, "max_steps", self.max_steps, -1, 10**7)
        _int(p, "batch_size", self.batch_size, 1, 1024)
        _int(p, "grad_accum", self.grad_accum, 1, 1024)
        _float(p, "warmup_ratio", self.warmup_ratio, 0.0, 0.5)
        _float(p, "weight_decay", self.weight_decay, 0.0, 1.0)
        _int(p, "max_length", self.max_length, 8, 32768)
        _int(p, "seed", self.seed, 0, 2**32 - 1)
        if not isinstance(self.gradient_checkpointing, bool):
            p.append("gradient_checkpointing must be true or false")
        _check_stacking_and_dpo(p, self)
        _int(p, "early_stopping_patience", self.early_stopping_patience, 0, 1000)
        _int(p, "eval_steps", self.eval_steps, 0, 10**7)
        _int(p, "logging_steps", self.logging_steps, 1, 10**6)
        _int(p, "save_steps", self.save_steps, 0, 10**7)
        if not (isinstance(self.report_to, list) and set(self.report_to) <= {"wandb", "mlflow"}):
            p.append("report_to must be a list of: wandb, mlflow (TensorBoard files are always written)")
        d = self.data
        _choice(p, "data.source", d.source, DATA_SOURCES)
        _choice(p, "data.format", d.format, FILE_FORMATS)
        if d.source == "dataset" and not d.dataset:
            p.append("data.dataset must name a saved dataset (or builtin:<sample>) when data.source is dataset")
        if d.source == "dataset" and self.task == "dpo":
            p.append("task dpo trains on preference pairs: set data.source to rows, file or feedback")
        if d.source == "rows" and self.task == "dpo" and isinstance(d.rows, list):
            p.extend(preference_row_problems(d.rows))
        if d.source == "dataset" and self.task == "sft" and not d.template:
            p.append("data.template is required to train on a dataset (rows are rendered through it)")
        if d.source == "file" and not d.file:
            p.append("data.file is required when data.source is file")
        if d.source == "rows" and not (isinstance(d.rows, list) and all(isinstance(r, dict) for r in d.rows)):
            p.append("data.rows must be a list of mappings when data.source is rows")
        _float(p, "data.validation_fraction", d.validation_fraction, 0.0, 0.5)
        if d.max_rows is not None:
            _int(p, "data.max_rows", d.max_rows, 1, 10**7)
        if d.labels is not None and not _str_list(d.labels):
            p.append("data.labels must be a list of label names")
        if p:
            raise TrainConfigError(p)


def _check_stacking_and_dpo(p: list[str], c: TrainConfig) -> None:
    if not isinstance(c.stack_on_parent, bool):
        p.append("stack_on_parent must be true or false")
    elif c.stack_on_parent:
        if not c.parent_version:
            p.append("stack_on_parent needs a parent_version: the adapter the new one is stacked on")
        if c.method not in ("lora", "dora", "adalora"):
            p.append(f"stack_on_parent trains a new lora, dora or adalora adapter; method is {str(c.method)[:40]!r}")
    _float(p, "dpo_beta", c.dpo_beta, 1e-4, 100.0)
    if c.task == "dpo" and c.method not in ("lora", "dora"):
        p.append(f"task dpo trains method lora or dora; got {str(c.method)[:40]!r}")


def preference_text(value) -> str | None:
    """A reply of a preference pair as text: a string, or TRL's conversational form (one assistant turn)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    if isinstance(value, list) and len(value) == 1:
        return preference_text(value[0])
    return None


def preference_row_problems(rows: list, first_line: int = 1, limit: int = 5) -> list[str]:
    """What is wrong with preference pairs ``{"prompt", "chosen", "rejected"}`` (row numbers from first_line)."""
    problems: list[str] = []
    if not rows:
        return ["the preference data has no pairs"]
    for n, row in enumerate(rows, start=first_line):
        where = f"pair {n}"
        if not isinstance(row, dict):
            problems.append(f"{where} must be a mapping with prompt, chosen and rejected")
        else:
            missing = [k for k in ("prompt", "chosen", "rejected") if row.get(k) in (None, "", [])]
            prompt = row.get("prompt")
            chat = isinstance(prompt, list) and all(
                isinstance(m, dict) and isinstance(m.get("content"), str) for m in prompt
            )
            chosen, rejected = preference_text(row.get("chosen")), preference_text(row.get("rejected"))
            if missing:
                problems.append(f"{where} has no {' / '.join(missing)} (a pair needs prompt, chosen and rejected)")
            elif not (isinstance(prompt, str) or chat):
                problems.append(f"{where}: prompt must be text or a list of chat messages (role, content)")
            elif chosen is None or rejected is None:
                problems.append(f"{where}: chosen and rejected must be text (or one assistant message each)")
            elif not chosen.strip() or not rejected.strip():
                problems.append(f"{where}: chosen and rejected must not be blank")
            elif chosen.strip() == rejected.strip():
                problems.append(f"{where}: chosen and rejected are the same reply, so there is no preference to learn")
        if len(problems) >= limit:
            problems.append("(further pairs not checked)")
            break
    return problems


def _choice(problems: list[str], name: str, value, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        problems.append(f"{name} must be one of {', '.join(allowed)}; got {str(value)[:40]!r}")


def _int(problems: list[str], name: str, value, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        problems.append(f"{name} must be an integer between {low} and {high}; got {str(value)[:40]!r}")


def _float(problems: list[str], name: str, value, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        problems.append(f"{name} must be a number between {low:g} and {high:g}; got {str(value)[:40]!r}")


def _str_list(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) and v for v in value)
