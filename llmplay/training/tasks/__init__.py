"""Training tasks: what a job learns (sft, cpt, dpo on causal LMs; classification, ner, mlm on encoders).

One module per task, each a ``Task`` subclass registered with ``@register_task``; the import list at the bottom
is the one place a new task is added. A task declares its config fields (``options``, flat YAML keys such as
``dpo_beta``), the checks of a config that picks it (``check``: the method fits, the data settings fit) and how
a job of it trains (``train``: the family's trainer, which builds the model, data and Trainer on the shared
scaffold). ``entry.py`` runs ``get_task(config.task).train(...)``. The shared trainers ask the task for what is
its own and never branch on its name: a causal task declares its ``row_shape`` (data_sources.py, data.py), an
encoder task supplies the hooks of ``encoder_task.EncoderTask`` (head, rows, labels, encoding, collator, metrics,
preview).

Must not know: the UI, the job runner. Trainers (torch, transformers) load inside ``train``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmplay.training.plugins import Registry

if TYPE_CHECKING:
    from llmplay.settings import Settings
    from llmplay.training.config import TrainConfig

CAUSAL, ENCODER = "causal", "encoder"  # task families: an adapter on a causal LM, or a BERT-family encoder
# What a task's training rows hold (training/data_sources.py, data.py): a prompt and its target (the loss on the
# target only), raw text (the loss on every token), or the source record alone (the task reads it itself).
PROMPT_ROWS, TEXT_ROWS, RECORD_ROWS = "prompt", "text", "record"


class Task:
    name: str = ""
    family: str = CAUSAL
    kind: str = "adapter"  # what a finished job is registered as (models.registry.KINDS; mlm: kept on disk)
    options: type | None = None  # dataclass of this task's config fields
    row_shape: str = RECORD_ROWS  # what data_sources reads each row as (PROMPT_ROWS, TEXT_ROWS, RECORD_ROWS)

    def check_options(self, config: TrainConfig, problems: list[str]) -> None:
        """Append what is wrong with this task's own fields (run for every config)."""

    def check(self, config: TrainConfig, problems: list[str]) -> None:
        """Append what is wrong with a config of this task: its method, its data settings."""

    def check_model(self, config: TrainConfig, kind: str) -> str | None:
        """What is wrong with training this task on a catalog model of ``kind`` (chat, base, embeddings, ...)."""
        return None

    def check_data(self, config: TrainConfig, settings: Settings) -> None:
        """Read and split the job's data as the trainer will, so a start refuses bad data before the job
        queues (raises LlmplayError naming the problem); models are not loaded."""

    def train(
        self,
        config: TrainConfig,
        settings: Settings,
        job_dir: Path,
        callbacks: Sequence[Any] = (),
        *,
        output_dir: Path | None = None,
        resume_from: str | bool | None = None,
    ):
        """Train a job of this task; the result has output_dir, kind, task, metrics, history, data_hash, row_ids,
        train_s, steps, completed, notes (see entry.py)."""
        raise NotImplementedError


TASKS: Registry[Task] = Registry("training task")
register_task = TASKS.register
get_task = TASKS.get


def a_kind(kind: str) -> str:
    """'a chat', 'an embeddings': a model kind with its article, for messages."""
    return ("an " if kind[:1] in "aeiou" else "a ") + kind


def task_names(family: str | None = None) -> tuple[str, ...]:
    return tuple(t.name for t in TASKS.all() if family is None or t.family == family)


# The registered tasks, in the order the Train tab offers them.
from llmplay.training.tasks import sft, cpt, dpo, classification, ner, mlm  # noqa: E402, F401, I001
