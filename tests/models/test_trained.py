"""Trained versions resolve by label wherever the core asks the catalog: the engine loads the base with the
version's adapter, output cache keys count the adapter's content, and a prompt-tuning adapter generates.

Adapters here are made with peft on the real SmolLM2 (random weights, no training: fast); the versions are
registered in the session engine's database and deleted again at the end of each test.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from llmplay.engine.types import GenerationParams
from llmplay.errors import InvalidRequestError, UnknownModelError
from llmplay.evaluation import outputs
from llmplay.models import registry, sources
from llmplay.models.catalog import Catalog
from tests.conftest import CHAT_MODEL, PARIS_QUESTION

GREEDY = GenerationParams(max_new_tokens=12)


def make_adapter(engine, folder: Path, kind: str = "lora", seed: int = 0) -> Path:
    import torch
    from peft import LoraConfig, PromptTuningConfig, TaskType, get_peft_model

    base = copy.deepcopy(engine.models.get(engine.catalog.get(CHAT_MODEL)).model)
    if kind == "lora":
        config = LoraConfig(task_type=TaskType.CAUSAL_LM, r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    else:
        config = PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=8)
    model = get_peft_model(base, config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:  # lora_B starts at zero (no change): make the adapter matter
                param.copy_(torch.randn(param.shape, generator=generator) * (0.05 if kind == "lora" else 0.5))
    model.save_pretrained(folder)
    return folder


@pytest.fixture()
def versions(engine):
    """Register versions in the session engine's database; they are deleted after the test."""
    made = []

    def add(folder: Path, name: str = "unit-lora", method: str = "lora", base: str = CHAT_MODEL, kind="adapter"):
        version = registry.register(
            engine.settings.db_path, name=name, base_model=base, kind=kind, path=folder, method=method, task="sft"
        )
        made.append(version)
        return version

    yield add
    for version in made:
        registry.mark_deleted(engine.settings.db_path, version.id)


def test_a_version_label_resolves_to_its_base_with_the_adapter(engine, versions, tmp_path):
    version = versions(make_adapter(engine, tmp_path / "a"))
    assert version.label == f"{CHAT_MODEL} + unit-lora v{version.version}"
    spec = engine.catalog.get(version.label)
    base = engine.catalog.get(CHAT_MODEL)
    assert (spec.name, spec.kind, spec.adapter, spec.base) == (version.label, "chat", str(tmp_path / "a"), CHAT_MODEL)
    assert spec.location == base.location and not spec.builtin
    assert version.label in [s.name for s in engine.catalog.versions()]
    # It shares the base's converted weights (no second GGUF conversion) but is a model of its own.
    weights = engine.models.weights(spec)
    assert sources.cache_key(spec, weights) == sources.cache_key(base, weights)


def test_the_engine_generates_with_the_versions_adapter(engine, versions, tmp_path):
    version = versions(make_adapter(engine, tmp_path / "a"))
    tuned = engine.generate(version.label, [PARIS_QUESTION], GREEDY)[0]
    assert tuned.ok and tuned.model == version.label
    # The adapter changes the model's likelihoods (its logits), whatever the greedy text does.
    _, base_scores = engine.choose(CHAT_MODEL, PARIS_QUESTION, ["Paris", "London"])
    _, tuned_scores = engine.choose(version.label, PARIS_QUESTION, ["Paris", "London"])
    assert all(abs(a.logprob - b.logprob) > 1e-3 for a, b in zip(base_scores, tuned_scores, strict=True))
    spec = engine.catalog.get(version.label)
    assert engine.models.is_loaded(spec) and engine.models.get(spec).adapter == spec.adapter
    engine.models.unload(version.label)


def test_output_cache_keys_count_the_versions_adapter_by_content(engine, versions, tmp_path):
    folder = make_adapter(engine, tmp_path / "a")
    version = versions(folder)
    spec, base = engine.catalog.get(version.label), engine.catalog.get(CHAT_MODEL)

    def key(s):
        return outputs.cache_key(prompt="p", spec=s, dtype="float32", adapter=None, params=GREEDY, mode="generate")

    first = key(spec)
    assert first != key(base)
    make_adapter(engine, folder, seed=1)  # retrained into the same folder
    assert key(spec) != first


def test_deleted_versions_and_versions_of_missing_bases_are_not_offered(engine, versions, tmp_path, settings):
    version = versions(make_adapter(engine, tmp_path / "a"))
    registry.mark_deleted(engine.settings.db_path, version.id)
    with pytest.raises(UnknownModelError, match="Unknown model"):
        engine.catalog.get(version.label)
    assert version.label not in [s.name for s in engine.catalog.versions()]
    # A version whose base left the catalog: hidden from pickers, and a clear message when named.
    orphan = registry.register(settings.db_path, name="orphan", base_model="gone-model", kind="adapter", path=tmp_path)
    catalog = Catalog(settings.models_file, db_path=settings.db_path)
    assert catalog.versions() == []
    with pytest.raises(UnknownModelError, match="no longer in the catalog"):
        catalog.get(orphan.label)
    # Names that only look like labels stay unknown; a catalog without a database knows no versions.
    with pytest.raises(UnknownModelError):
        Catalog().get(orphan.label)


def test_a_classifier_version_is_a_local_model_of_its_kind(settings, tmp_path):
    version = registry.register(
        settings.db_path, name="fpb-cls", base_model="all-minilm-l6-v2", kind="classifier", path=tmp_path
    )
    spec = Catalog(settings.models_file, db_path=settings.db_path).get("fpb-cls v1")
    assert version.label == "fpb-cls v1"
    assert (spec.kind, spec.source, spec.location, spec.base) == (
        "classifier",
        "local",
        str(tmp_path),
        "all-minilm-l6-v2",
    )


def test_a_prompt_tuning_version_generates_through_peft(engine, versions, tmp_path):
    version = versions(
        make_adapter(engine, tmp_path / "pt", kind="prompt_tuning"), name="unit-pt", method="prompt_tuning"
    )
    long = "You are a helpful assistant who answers very briefly. " * 8  # a shared prefix batches would reuse
    prompts = [long + "What is the capital of France?", long + "What is 2+2?"]
    batched = engine.generate(version.label, prompts, GREEDY)
    alone = [engine.generate(version.label, [p], GREEDY)[0] for p in prompts]
    base = engine.generate(CHAT_MODEL, prompts, GREEDY)
    assert all(r.ok for r in batched + alone)
    assert [r.text for r in batched] == [r.text for r in alone]  # the soft prompt applies to every row
    assert [r.text for r in batched] != [r.text for r in base]
    with pytest.raises(InvalidRequestError, match="prompt-tuning"):
        engine.choose(version.label, PARIS_QUESTION, ["Paris", "London"])
    engine.models.unload(version.label)
