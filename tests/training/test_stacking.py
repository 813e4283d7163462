"""stack_on_parent on the real SmolLM2 through the training entry point: a fresh LoRA trains on top of the frozen
parent merged into the base, the parent's files do not change, the stacked version loads everywhere as base +
parent merged + new adapter merged (computed here by hand with peft), a version continued from a stacked one keeps
the stack, and the parent cannot be deleted while a version is stacked on it."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file

from llmplay.models import registry
from llmplay.models.adapters import STACK_FILE, adapter_chain, adapter_identity, stack_of
from llmplay.training.config import TrainConfig, TrainConfigError
from llmplay.training.manage import VersionError, delete_version
from tests.conftest import CHAT_MODEL
from tests.training.test_causal import last_job, run_entry
from tests.training.tiny_jobs import tiny_config

NO_VALIDATION = {"validation_fraction": 0.0}


def train(settings, monkeypatch, tmp_path, **overrides) -> registry.ModelVersion:
    config = tiny_config("line", **{"max_steps": 2, "data": NO_VALIDATION, **overrides})
    assert run_entry(settings, monkeypatch, tmp_path, config) == 0
    return registry.get_version(settings.db_path, last_job(settings).version_id)


@pytest.mark.slow
def test_a_stacked_version_trains_only_a_new_adapter_and_loads_with_its_parent_merged(
    settings, tmp_path, monkeypatch, isolated_engine
):
    parent = train(settings, monkeypatch, tmp_path)
    parent_files = registry.files_hash(parent.path)
    parent_weights = load_file(f"{parent.path}/adapter_model.safetensors")

    stacked = train(settings, monkeypatch, tmp_path, parent_version=parent.label, stack_on_parent=True)
    assert stacked.parent_id == parent.id and stacked.config["stack_on_parent"] is True
    assert (Path(stacked.path) / STACK_FILE).is_file()
    assert stack_of(stacked.path) == [str(Path(parent.path).resolve())]
    # The parent did not change: its files are byte for byte those it was registered with.
    assert registry.files_hash(parent.path) == parent_files == parent.files_hash
    new_weights = load_file(f"{stacked.path}/adapter_model.safetensors")
    assert new_weights.keys() == parent_weights.keys()  # one fresh r=4 q/v LoRA, not a copy of the parent ...
    assert any("lora_B" in k and v.abs().sum() > 0 for k, v in new_weights.items())  # ... that trained
    assert not all(torch.equal(new_weights[k], parent_weights[k]) for k in new_weights)
    assert adapter_identity(stacked.path) != adapter_identity(parent.path)

    engine = isolated_engine  # the base model is the session's copy; the stacked version loads here
    loaded = engine.models.get(engine.catalog.get(stacked.label), dtype="float32")
    base = engine.models.get(engine.catalog.get(CHAT_MODEL), dtype="float32")
    ids = base.tokenizer("Is 'great' good or bad? One word.", return_tensors="pt")["input_ids"]
    by_hand = PeftModel.from_pretrained(copy.deepcopy(base.model), parent.path).merge_and_unload()
    parent_only = copy.deepcopy(by_hand)
    by_hand = PeftModel.from_pretrained(by_hand, stacked.path).merge_and_unload()
    with torch.no_grad():
        got, want = loaded.model(input_ids=ids).logits, by_hand(input_ids=ids).logits
        without_new = parent_only(input_ids=ids).logits
    assert torch.allclose(got, want, atol=1e-5)
    assert not torch.allclose(got, without_new, atol=1e-4)  # the new adapter is applied on top

    # Continuing the stacked version trains its own adapter further and keeps the parent below it.
    continued = train(settings, monkeypatch, tmp_path, parent_version=stacked.label, max_steps=1)
    assert adapter_chain(continued.path) == [str(Path(parent.path).resolve()), continued.path]

    with pytest.raises(VersionError, match="is stacked on it"):
        delete_version(settings, parent.label)
    assert registry.find(settings.db_path, parent.label) is not None


def test_stack_on_parent_needs_a_parent_and_a_mergeable_method():
    with pytest.raises(TrainConfigError, match="stack_on_parent needs a parent_version"):
        TrainConfig.from_dict(tiny_config("line", stack_on_parent=True))
    with pytest.raises(TrainConfigError, match="stack_on_parent trains a new lora, adalora or dora adapter"):
        TrainConfig.from_dict(tiny_config("line", stack_on_parent=True, parent_version="x v1", method="prompt_tuning"))
    with pytest.raises(TrainConfigError, match="stack_on_parent must be true or false"):
        TrainConfig.from_dict(tiny_config("line", stack_on_parent="yes"))


def test_orthogonal_weight_needs_a_stacked_lora_adapter():
    with pytest.raises(TrainConfigError, match="orthogonal_weight \\(O-LoRA\\) needs stack_on_parent"):
        TrainConfig.from_dict(tiny_config("line", orthogonal_weight=0.5, parent_version="x v1"))
    with pytest.raises(TrainConfigError, match="trains a LoRA or DoRA adapter; method is 'adalora'"):
        TrainConfig.from_dict(
            tiny_config("line", orthogonal_weight=0.5, parent_version="x v1", stack_on_parent=True, method="adalora")
        )
    with pytest.raises(TrainConfigError, match="orthogonal_weight must be a number between 0 and 1000"):
        TrainConfig.from_dict(tiny_config("line", orthogonal_weight=-1))
    ok = TrainConfig.from_dict(tiny_config("line", orthogonal_weight=0.5, parent_version="x v1", stack_on_parent=True))
    assert ok.orthogonal_weight == 0.5


@pytest.mark.slow
def test_o_lora_keeps_the_new_adapter_off_the_stacked_ones_subspace(settings, tmp_path, monkeypatch):
    """Two adapters stacked on the same parent, same data and seed, with and without O-LoRA's penalty: the overlap
    of the new LoRA A matrices with the parent's, measured on the saved weights, is lower with it."""
    from llmplay.training.orthogonal import load_subspaces, module_key, overlap

    parent = train(settings, monkeypatch, tmp_path, max_steps=3, learning_rate=3e-3)
    stacked = {"parent_version": parent.label, "stack_on_parent": True, "max_steps": 3, "learning_rate": 3e-3}
    plain = train(settings, monkeypatch, tmp_path, **stacked)
    olora = train(settings, monkeypatch, tmp_path, orthogonal_weight=50.0, **stacked)
    earlier = load_subspaces([Path(parent.path)])

    def measured(version) -> float:
        weights = load_file(f"{version.path}/adapter_model.safetensors")
        return sum(float(overlap(earlier[module_key(k)], v.float())) for k, v in weights.items() if module_key(k))

    assert measured(olora) < 0.5 * measured(plain)
