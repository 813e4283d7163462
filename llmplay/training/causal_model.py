"""The model side of a causal-LM job: load the base, check the config against it, wrap it with peft.

Every check that needs the model runs here, before the first step, and raises ``CausalTrainingError`` with a
message a user can act on: a base that is not a local chat/base model, target modules the model does not have
(naming some it has), a parent version trained on another base model or with another method. The peft config of
a fresh adapter comes from the method (methods/).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llmplay.errors import LlmplayError, short_list
from llmplay.models import registry
from llmplay.settings import Settings
from llmplay.training.config import TrainConfig

# LoRA on every projection of attention and MLP (Biderman et al. 2024: all modules, alpha = 2r). The same as
# "all-linear" for these families, named so that an adapter's config says what it adapted.
_LLAMA_LIKE = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
DEFAULT_TARGETS = {
    "llama": _LLAMA_LIKE,
    "mistral": _LLAMA_LIKE,
    "qwen2": _LLAMA_LIKE,
    "qwen3": _LLAMA_LIKE,
    "gemma": _LLAMA_LIKE,
    "gemma2": _LLAMA_LIKE,
    "gemma3_text": _LLAMA_LIKE,
    "phi3": ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"],
}
# Architectures whose logits are exactly lm_head(final hidden state) (+ optional soft-capping): the trainer may
# compute logits only where a token is trained (a short answer after a long prompt: a few positions of hundreds).
PLAIN_HEAD_TYPES = {"llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text"}


class CausalTrainingError(LlmplayError):
    pass


@dataclass
class BaseModel:
    loaded: object  # llmplay.models.loader.LoadedModel: spec, tokenizer, folder (what data.build_examples needs)
    parent: registry.ModelVersion | None = None

    @property
    def model(self):
        return self.loaded.model

    @property
    def tokenizer(self):
        return self.loaded.tokenizer


def check_method(config: TrainConfig) -> None:
    from llmplay.training.checks import or_list
    from llmplay.training.methods import METHODS, get_method
    from llmplay.training.tasks import PROMPT_ROWS, TEXT_ROWS, get_task

    # The trainer's own guard: it trains the tasks whose rows are prompts or text (sft, cpt); tasks/ sends dpo to
    # dpo.py and the encoder tasks elsewhere.
    if get_task(config.task).row_shape not in (PROMPT_ROWS, TEXT_ROWS):
        raise CausalTrainingError(f"Task {config.task!r} is not a causal-LM task (sft or cpt).")
    if not get_method(config.method).causal:
        causal = [m.name for m in METHODS.all() if m.causal]
        raise CausalTrainingError(
            f"Method {config.method!r} trains every weight of an encoder; causal models train an adapter: "
            f"set method to {or_list(causal)}."
        )


def load_base(config: TrainConfig, settings: Settings) -> BaseModel:
    """The base model in float32, owned by this job (not shared with any engine), plus its parent version."""
    from llmplay.engine import Engine

    engine = Engine(settings)
    spec = engine.catalog.get(config.base_model)  # UnknownModelError names the known models
    if spec.adapter:
        raise CausalTrainingError(
            f"base_model {config.base_model!r} is a trained version; set base_model: {spec.base} and "
            f"parent_version: {config.base_model!r} to continue training it."
        )
    if spec.source == "endpoint" or spec.kind not in ("chat", "base"):
        raise CausalTrainingError(
            f"{spec.name!r} is a {spec.kind} model ({spec.source}); task {config.task} trains a local chat or "
            "base model (an encoder trains with task classification, ner or mlm)."
        )
    parent = resolve_parent(config, settings)
    loaded = engine.models.get(spec, dtype="float32")
    engine.models.unload(spec.name)  # this job owns the module now: training changes its mode and weights
    return BaseModel(loaded, parent)


def resolve_parent(config: TrainConfig, settings: Settings) -> registry.ModelVersion | None:
    label = config.parent_version
    if not label:
        return None
    try:
        version = registry.parent_version(settings.db_path, label, config.base_model, kinds=("adapter",))
    except registry.ParentVersionError as exc:
        raise CausalTrainingError(str(exc)) from None
    if version.kind != "adapter":
        raise CausalTrainingError(f"parent_version {label!r} is a {version.kind} model, not an adapter to continue.")
    if config.stack_on_parent and version.method == "prompt_tuning":
        raise CausalTrainingError(
            f"parent_version {label!r} is a prompt-tuning soft prompt: it has no weights to merge, so nothing can be "
            "stacked on it. Set stack_on_parent: false to continue it."
        )
    if version.method and version.method != config.method and not config.stack_on_parent:
        raise CausalTrainingError(
            f"parent_version {label!r} was trained with method {version.method}; set method: {version.method} "
            "to continue it (its adapter keeps its own rank and target modules)."
        )
    if not (Path(version.path) / "adapter_config.json").exists():
        raise CausalTrainingError(f"parent_version {label!r} has no adapter files at {version.path}.")
    return version


def linear_names(model) -> list[str]:
    """Leaf names of the model's linear layers other than the output head (what target_modules may name)."""
    import torch

    head = model.get_output_embeddings()
    names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and m is not head}
    return sorted(names)


def resolve_targets(model, config: TrainConfig) -> list[str] | str:
    targets = config.target_modules
    if targets == "all-linear":
        return "all-linear"
    available = linear_names(model)
    if targets == "default":
        chosen = [t for t in DEFAULT_TARGETS.get(model.config.model_type, []) if t in available]
        return chosen or "all-linear"
    names = [n for n, _ in model.named_modules()]
    missing = [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]
    if missing:
        raise CausalTrainingError(
            f"target_modules {short_list(missing)} do not exist in {config.base_model}. Its linear layers are "
            f"named: {short_list(available, 12)}; or use 'default' or 'all-linear'."
        )
    return list(targets)


def frozen_stack(base: BaseModel, config: TrainConfig) -> list[str]:
    """The adapter folders merged (frozen) into the base before training, bottom first; the saved version records
    them (models/adapters.py). A stacked parent brings its own stack; ``stack_on_parent`` adds the parent itself."""
    from llmplay.models.adapters import adapter_chain

    if base.parent is None:
        return []
    chain = adapter_chain(base.parent.path)
    return chain if config.stack_on_parent else chain[:-1]


def wrap(base: BaseModel, config: TrainConfig, total_steps: int, gradient_checkpointing: bool = False):
    """The trainable peft model: a new adapter, or the parent version's adapter to train further. The adapters of
    ``frozen_stack`` are merged into the base weights first, so only the new (or continued) adapter trains."""
    from peft import PeftModel, get_peft_model

    from llmplay.models.adapters import merge_adapters
    from llmplay.training.methods import get_method

    model = merge_adapters(base.model, frozen_stack(base, config))
    model.train()
    model.config.use_cache = False
    if gradient_checkpointing:
        # Non-reentrant checkpointing needs no inputs that require grad (the frozen embeddings give none).
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    method = get_method(config.method)
    if base.parent is not None and not config.stack_on_parent:
        peft_model = PeftModel.from_pretrained(model, base.parent.path, is_trainable=True)
        method.continue_adapter(peft_model, config, total_steps)
    else:
        try:
            peft_model = get_peft_model(
                model, method.causal_peft_config(config, model, total_steps, base.loaded.folder)
            )
        except ValueError as exc:  # peft's own checks (e.g. a module type it cannot adapt)
            raise CausalTrainingError(f"peft could not set up {config.method} on {config.base_model}: {exc}") from exc
    peft_model.train()
    return peft_model


def freeze_base_in_bf16(peft_model) -> int:
    """Frozen linear weights stored in bfloat16 when training under bf16 autocast: autocast multiplies in bf16
    anyway, so the results are the same, without a float32 copy plus autocast's bf16 copy of every weight and
    without re-casting them each step. Embeddings, norms and the adapter stay float32, copied out of the
    memory-mapped safetensors file so that its pages are released too (measured on SmolLM2: peak RSS of a
    16-row step 3.26 -> 2.5 GB)."""
    import torch

    base = peft_model.get_base_model()
    head = base.get_output_embeddings()
    converted = 0
    for module in base.modules():
        if isinstance(module, torch.nn.Linear) and module is not head and not module.weight.requires_grad:
            module.weight.data = module.weight.data.to(torch.bfloat16)
            converted += module.weight.numel()
    with torch.no_grad():
        for tensor in [*base.parameters(), *base.buffers()]:
            if tensor.dtype != torch.bfloat16 and not tensor.requires_grad:
                tensor.data = tensor.data.clone()
    return converted


def trainable_parameters(model) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


def weights_digest(model) -> str:
    """sha256 of the trainable weights (by name): equal on every rank of a data-parallel job."""
    import hashlib

    import torch

    digest = hashlib.sha256()
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda item: item[0]):
            if p.requires_grad:
                digest.update(name.encode())
                digest.update(p.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()
