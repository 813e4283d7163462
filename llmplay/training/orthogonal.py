"""O-LoRA's orthogonality penalty (Wang et al., 2023, "Orthogonal Subspace Learning for Language Model Continual
Learning"): a new task's LoRA update is kept out of the subspaces the earlier tasks' LoRA updates use, so
learning it disturbs them less.

A LoRA module's ``lora_A`` weight is ``r x in_features``: its rows span the input subspace the update reads. For
an earlier adapter's ``A_i`` and the adapter in training ``A_t`` the overlap is ``A_i @ A_t.T`` (``r_i x r_t``);
the penalty is the sum of its squared entries over modules and earlier adapters: zero exactly when every row
of ``A_t`` is orthogonal to every row of every ``A_i``.

``OrthogonalityCallback`` adds ``weight * penalty``'s gradient before each optimizer step (after the task loss's
backward), so the trainer's loss code stays as it is.
"""

from __future__ import annotations

import re
from pathlib import Path

from transformers import TrainerCallback

_ADAPTER_NAME = re.compile(r"\.lora_A(\.[^.]+)?\.weight$")


def module_key(parameter_name: str) -> str | None:
    """The LoRA module a ``lora_A`` parameter belongs to, the same in a saved adapter and a live peft model
    (``...q_proj.lora_A.weight`` and ``...q_proj.lora_A.default.weight`` -> ``...q_proj``); None otherwise."""
    match = _ADAPTER_NAME.search(parameter_name)
    return parameter_name[: match.start()] if match else None


def load_subspaces(adapter_dirs: list[Path]) -> dict[str, list]:
    """Module -> the ``lora_A`` matrices of the earlier adapters (saved peft folders), as float32 tensors."""
    from safetensors.torch import load_file

    found: dict[str, list] = {}
    for folder in adapter_dirs:
        weights = load_file(str(Path(folder) / "adapter_model.safetensors"))
        for name, tensor in weights.items():
            key = module_key(name)
            if key is not None:
                found.setdefault(key, []).append(tensor.float())
    if not found:
        raise ValueError(f"No LoRA A matrices in {', '.join(map(str, adapter_dirs))}: O-LoRA needs LoRA adapters.")
    return found


def overlap(previous: list, current):
    """Sum of squared entries of ``A_i @ A_t.T`` over the earlier matrices (differentiable in ``current``)."""
    total = current.new_zeros(())
    for a in previous:
        total = total + (a.to(current.dtype) @ current.T).pow(2).sum()
    return total


def penalty(model, subspaces: dict[str, list]):
    """The penalty over every trainable ``lora_A`` of ``model`` that has earlier matrices (None if none has)."""
    total = None
    for name, parameter in model.named_parameters():
        key = module_key(name)
        if key is None or not parameter.requires_grad or key not in subspaces:
            continue
        term = overlap(subspaces[key], parameter)
        total = term if total is None else total + term
    return total


class OrthogonalityCallback(TrainerCallback):
    """Before each optimizer step: the gradient of ``weight * penalty`` joins the task loss's; ``last`` keeps the
    penalty's value (logged as ``orthogonality``)."""

    def __init__(self, subspaces: dict[str, list], weight: float):
        self.subspaces, self.weight = subspaces, weight
        self.last: float | None = None

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        value = penalty(model, self.subspaces)
        if value is None:
            return
        (self.weight * value).backward()
        self.last = float(value.detach())

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is not None and self.last is not None:
            logs["orthogonality"] = self.last
