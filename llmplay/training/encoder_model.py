"""The model side of encoder jobs: which folder to start from, the task head, frozen layers, LoRA targets.

Every check that needs the model (freeze_layers within the layer count, target modules that exist, a parent
version with the same labels and base) raises before training starts, with the names the user can pick from.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from llmplay.errors import LlmplayError, ModelLoadError, UnknownModelError
from llmplay.settings import Settings
from llmplay.training.config import TrainConfig
from llmplay.training.tasks import get_task

ENCODER_KINDS = ("encoder", "classifier", "tagger")
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


class EncoderModelError(LlmplayError):
    pass


@dataclass(frozen=True)
class EncoderBase:
    folder: str  # a local folder (or a Hub id) that from_pretrained reads
    labels: list[str] | None = None  # the labels of a parent version's head (it must stay the same)
    parent_id: int | None = None  # the version continued from


def resolve_encoder(config: TrainConfig, settings: Settings) -> EncoderBase:
    """The weights an encoder job starts from: a parent version's folder, or the base model's."""
    from llmplay.models import registry, sources
    from llmplay.models.catalog import Catalog

    if config.parent_version:
        try:
            parent = registry.parent_version(settings.db_path, config.parent_version, config.base_model)
        except registry.ParentVersionError as exc:
            raise EncoderModelError(str(exc)) from None
        wanted = {"classification": "classifier", "ner": "tagger"}.get(config.task)
        if parent.kind not in (wanted, "encoder"):
            fits = f"a {wanted} version or a masked-LM (encoder) version" if wanted else "a masked-LM (encoder) version"
            raise EncoderModelError(
                f"Version {parent.label!r} is a {parent.kind}; task {config.task!r} continues {fits}."
            )
        # A classifier / tagger keeps its head (same labels); a masked-LM version gets a fresh head.
        labels = _folder_labels(parent.path) if parent.kind == wanted else None
        return EncoderBase(parent.path, labels, parent.id)
    try:
        spec = Catalog(settings.models_file).get(config.base_model)
    except UnknownModelError:
        path = Path(config.base_model).expanduser()
        if path.is_dir():
            return EncoderBase(str(path))
        if _HUB_ID.match(config.base_model):
            return EncoderBase(config.base_model)  # a Hub id: needs the Hub (or its local cache)
        raise
    if spec.kind not in ENCODER_KINDS:
        raise EncoderModelError(
            f"{config.base_model!r} is a {spec.kind} model; task {config.task!r} fine-tunes a BERT-family encoder "
            "such as all-minilm-l6-v2."
        )
    return EncoderBase(sources.resolve(spec, settings.cache_dir / "_gguf").path)


def _folder_labels(folder: str) -> list[str] | None:
    try:
        config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    id2label = config.get("id2label") or {}
    return [id2label[k] for k in sorted(id2label, key=int)] if id2label else None


def build_model(task: str, folder: str, labels: list[str]):
    """(model, tokenizer) for ``task`` with a head for ``labels`` (fresh unless the folder already has one)."""
    from transformers import AutoTokenizer

    kind = get_task(task)
    head = {}
    if kind.labelled:
        head = {
            "num_labels": len(labels),
            "id2label": dict(enumerate(labels)),
            "label2id": {label: i for i, label in enumerate(labels)},
        }
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
        model = kind.model_class().from_pretrained(folder, **head, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"Could not load an encoder for task {task!r} from {folder}: {str(exc)[:300]}. Use a BERT-family "
            "model folder (or a Hub id when the Hub is reachable)."
        ) from exc
    kind.check_tokenizer(tokenizer, folder)
    return model, tokenizer


def encoder_layers(model):
    """The model's stack of transformer layers (``encoder.layer`` for BERT, ``transformer.layer``, ...)."""
    import torch

    base = model.base_model
    for name, module in base.named_modules():
        if isinstance(module, torch.nn.ModuleList) and name.split(".")[-1] in ("layer", "layers"):
            return module
    raise EncoderModelError(f"Cannot find the transformer layers of {type(model).__name__} to freeze.")


def freeze_lower_layers(model, n: int) -> None:
    """Freeze the embeddings and the lowest ``n`` layers (0: nothing); the rest and the head train."""
    if not n:
        return
    layers = encoder_layers(model)
    if n > len(layers):
        raise EncoderModelError(f"freeze_layers is {n}, but the model has only {len(layers)} layers.")
    embeddings = getattr(model.base_model, "embeddings", None)
    for module in ([embeddings] if embeddings is not None else []) + list(layers[:n]):
        for param in module.parameters():
            param.requires_grad = False


def head_modules(model, task: str) -> list[str]:
    """Names of the task head (trained in full next to LoRA; the task says which: ``EncoderTask.head_modules``)."""
    return get_task(task).head_modules(model)


def lora_targets(model, task: str, wanted) -> list[str]:
    """Full names of the Linear modules LoRA adapts: inside the encoder only, never the head."""
    import torch
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as DEFAULTS

    prefix = model.base_model_prefix
    head = head_modules(model, task)
    linear = [
        n
        for n, m in model.named_modules()
        if isinstance(m, torch.nn.Linear)
        and n.startswith(prefix + ".")
        and not any(n == h or n.startswith(h + ".") for h in head)
    ]
    if wanted == "all-linear":
        return linear
    if wanted == "default":
        wanted = DEFAULTS.get(model.config.model_type)
        if not wanted:
            return linear
    chosen, missing = [], []
    for name in wanted:
        hits = [n for n in linear if n == name or n.endswith("." + name)]
        chosen += hits
        if not hits:
            missing.append(name)
    if missing:
        leaves = sorted({n.split(".")[-1] for n in linear})
        raise EncoderModelError(
            f"target_modules {', '.join(missing)} match no linear layer of {model.config.model_type!r}; "
            f"its linear layers are named {', '.join(leaves)} (or use 'all-linear')."
        )
    return list(dict.fromkeys(chosen))


def lora_config(model, config: TrainConfig):
    from peft import LoraConfig, TaskType

    task_type = {"classification": TaskType.SEQ_CLS, "ner": TaskType.TOKEN_CLS}.get(config.task)
    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=lora_targets(model, config.task, config.target_modules),
        modules_to_save=head_modules(model, config.task),
        task_type=task_type,
    )


def trainable_parameters(model) -> tuple[int, int]:
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)
