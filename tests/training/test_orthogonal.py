"""O-LoRA's orthogonality penalty on small hand-made matrices: zero for orthogonal subspaces, positive otherwise,
its gradient (added by the callback before the optimizer step) lowers the overlap, and saved adapters' A matrices
are matched to a live peft model's modules by name."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from llmplay.training.orthogonal import OrthogonalityCallback, load_subspaces, module_key, overlap, penalty


def test_the_overlap_is_zero_for_orthogonal_rows_and_the_squared_projection_otherwise():
    earlier = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    orthogonal = torch.tensor([[0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 2.0]])
    assert float(overlap([earlier], orthogonal)) == 0.0
    tilted = torch.tensor([[3.0, 0.0, 1.0, 0.0]])
    assert float(overlap([earlier], tilted)) == pytest.approx(9.0)  # (A_i @ A_t.T) = [[3], [0]]
    assert float(overlap([earlier, earlier], tilted)) == pytest.approx(18.0)  # every earlier adapter counts


def test_module_keys_match_saved_adapters_and_live_peft_parameters():
    saved = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
    live = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight"
    assert module_key(saved) == module_key(live) == "base_model.model.model.layers.0.self_attn.q_proj"
    assert module_key("base_model.model.model.layers.0.self_attn.q_proj.lora_B.default.weight") is None
    assert module_key("model.embed_tokens.weight") is None


class _Lora(nn.Module):
    def __init__(self, a: torch.Tensor):
        super().__init__()
        self.lora_A = nn.ModuleDict({"default": nn.Linear(a.shape[1], a.shape[0], bias=False)})
        self.lora_A["default"].weight.data = a.clone()


class _Model(nn.Module):
    def __init__(self, a: torch.Tensor):
        super().__init__()
        self.q_proj = _Lora(a)


def test_the_callback_adds_the_penalty_gradient_and_steps_on_it_lower_the_overlap(tmp_path):
    earlier = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    folder = tmp_path / "v1"
    folder.mkdir()
    save_file(
        {"q_proj.lora_A.weight": earlier, "q_proj.lora_B.weight": torch.ones(3, 2)},
        str(folder / "adapter_model.safetensors"),
    )
    subspaces = load_subspaces([folder])
    assert list(subspaces) == ["q_proj"] and torch.equal(subspaces["q_proj"][0], earlier)

    model = _Model(torch.tensor([[0.6, 0.8, 0.5]]))
    weight = model.q_proj.lora_A["default"].weight
    start = float(penalty(model, subspaces))
    assert start == pytest.approx(0.6**2 + 0.8**2)
    callback = OrthogonalityCallback(subspaces, weight=0.5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2)
    for _ in range(40):
        optimizer.zero_grad()
        callback.on_pre_optimizer_step(None, None, None, model=model)
        optimizer.step()
    assert callback.last is not None and float(penalty(model, subspaces)) < 0.01 * start
    # what the penalty leaves alone: the direction orthogonal to the earlier subspace
    assert float(weight[0, 2]) == pytest.approx(0.5)
    logs = {}
    callback.on_log(None, None, None, logs=logs)
    assert logs["orthogonality"] == pytest.approx(callback.last)


def test_a_frozen_or_unmatched_module_adds_nothing_and_a_folder_without_lora_is_refused(tmp_path):
    model = _Model(torch.ones(1, 3))
    model.q_proj.lora_A["default"].weight.requires_grad_(False)
    assert penalty(model, {"q_proj": [torch.ones(1, 3)]}) is None
    assert penalty(_Model(torch.ones(1, 3)), {"k_proj": [torch.ones(1, 3)]}) is None
    folder = tmp_path / "full"
    folder.mkdir()
    save_file({"model.embed_tokens.weight": torch.ones(2, 2)}, str(folder / "adapter_model.safetensors"))
    with pytest.raises(ValueError, match="needs LoRA adapters"):
        load_subspaces([folder])
