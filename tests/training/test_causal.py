"""The causal-LM trainer on the real SmolLM2: the padding-cutting batches give the plain batch's loss and gradient,
short LoRA / AdaLoRA / DoRA / prompt-tuning jobs run end to end through the entry point (progress rows, a
registered version offered by name), bad inputs are refused before training, and a crash marks the job failed."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

from llmplay.engine import GenerationParams
from llmplay.models import registry
from llmplay.training import entry, records
from llmplay.training.batching import IGNORE_INDEX, CausalCollator, pack_rows, shared_prefix_length
from llmplay.training.causal import CausalTrainer, train_causal
from llmplay.training.causal_loss import forward_loss, selective_loss, shared_prefix_backward
from llmplay.training.causal_model import CausalTrainingError
from llmplay.training.config import TrainConfig
from llmplay.training.data import build_examples, load_rows
from tests.conftest import BASE_MODEL, CHAT_MODEL
from tests.training.tiny_jobs import TINY_ROWS, entry_env, tiny_config, write_config

NO_VALIDATION = {"validation_fraction": 0.0}  # runs that check something else skip the evaluation pass
ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# A system message every row shares (as a template's system text and few-shot examples are): the prefix.
SYSTEM = (
    "You label short product reviews for a small shop. Read the review, decide whether the customer was happy "
    "or unhappy, and answer with exactly one lowercase word: good or bad. Never explain the answer."
)
REVIEWS = [
    ("The kettle boils fast and looks lovely.", "good"),
    ("It broke after two days.", "bad"),
    ("Great value, would buy again without a second thought.", "good"),
    ("Arrived late and scratched.", "bad"),
    ("Fine.", "good"),
]


@pytest.fixture(scope="module")
def trainable_smol(model_cache_dir, tmp_path_factory):
    """A SmolLM2 of this module's own: peft wraps modules in place, so never the engine's shared copy."""
    from llmplay.models.catalog import Catalog
    from llmplay.models.loader import ModelManager
    from llmplay.settings import Settings

    settings = Settings(data_dir=tmp_path_factory.mktemp("trainable"), cache_dir=model_cache_dir)
    return ModelManager(settings).get(Catalog(settings=settings).get(CHAT_MODEL), dtype="float32")


@pytest.fixture(scope="module")
def lora_smol(trainable_smol):
    """LoRA on every linear layer with random (non-zero) A and B, so every adapter weight has a gradient."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    config = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=ALL_LINEAR, init_lora_weights=False)
    model = get_peft_model(trainable_smol.model, config)
    model.train()
    return model


@pytest.fixture(scope="module")
def review_features(trainable_smol, tmp_path_factory):
    from llmplay.settings import Settings

    rows = [{"system": SYSTEM, "prompt": text, "completion": label} for text, label in REVIEWS]
    config = TrainConfig.from_dict(
        {"name": "r", "base_model": CHAT_MODEL, "max_length": 256, "data": {"source": "rows", "rows": rows}}
    )
    settings = Settings(data_dir=tmp_path_factory.mktemp("reviews"))
    examples = build_examples(config, trainable_smol, load_rows(config, settings).rows)
    return [{"input_ids": e.input_ids, "labels": e.labels} for e in examples]


def collate(features, mode, pad_id, max_length=256) -> tuple[dict, torch.Tensor]:
    batch = dict(CausalCollator(pad_id=pad_id, mode=mode, max_length=max_length)(features))
    batch.pop("num_tokens")
    return batch, (batch["labels"][:, 1:] != IGNORE_INDEX).sum()


def test_pack_rows_fills_rows_first_fit_decreasing():
    assert pack_rows([5, 3, 4, 2], capacity=8) == [[0, 1], [2, 3]]
    assert pack_rows([9, 2], capacity=8) == [[0], [1]]  # too long for a row: a row of its own


def test_packed_raw_text_does_not_predict_one_example_from_another():
    features = [{"input_ids": [5, 6, 7], "labels": [5, 6, 7]}, {"input_ids": [8, 9], "labels": [8, 9]}]
    batch = CausalCollator(pad_id=0, mode="pack", max_length=8)(features)
    assert batch["input_ids"].shape == (1, 16)  # one row, padded to a multiple of 16
    assert batch["labels"][0, :5].tolist() == [-100, 6, 7, -100, 9]
    assert batch["position_ids"][0, :5].tolist() == [0, 1, 2, 0, 1]
    assert int(batch["num_tokens"]) == 5


def test_shared_prefix_stops_before_the_first_trained_token():
    rows = [{"input_ids": [1, 2, 3, 4, 5], "labels": [-100, -100, -100, 4, 5]}]
    rows.append({"input_ids": [1, 2, 3, 4, 6], "labels": [-100, -100, -100, -100, 6]})
    # Tokens 1, 2, 3, 4 are shared, but token 4 is trained in the first row: the prefix ends before it.
    assert shared_prefix_length(rows) == 3


def test_packed_prefix_and_padded_batches_give_the_same_loss(lora_smol, trainable_smol, review_features):
    pad_id = trainable_smol.tokenizer.pad_token_id
    reference, count = collate(review_features, "pad", pad_id)
    packed, packed_count = collate(review_features, "pack", pad_id)
    prefixed, prefix_count = collate(review_features, "prefix", pad_id)
    assert packed["input_ids"].shape[0] < len(review_features)  # several examples share a row
    assert "attention_mask" not in packed and packed["position_ids"][0].tolist().count(0) >= 2
    assert prefixed["prefix_ids"].shape[1] >= 40  # the system message is computed once
    assert int(count) == int(packed_count) == int(prefix_count) > 0
    with torch.no_grad():
        plain = forward_loss(lora_smol, reference, count).item()
        losses = {
            "pack (model forward)": forward_loss(lora_smol, packed, count).item(),
            "pack (trained positions only)": selective_loss(lora_smol, packed, count).item(),
            "prefix (model forward)": forward_loss(lora_smol, prefixed, count).item(),
            "prefix (trained positions only)": selective_loss(lora_smol, prefixed, count).item(),
            "pad (trained positions only)": selective_loss(lora_smol, reference, count).item(),
        }
    assert plain > 0.1
    for name, value in losses.items():
        assert value == pytest.approx(plain, rel=2e-4), name


def test_a_shared_prefix_step_has_the_plain_batch_gradient(lora_smol, trainable_smol, review_features):
    pad_id = trainable_smol.tokenizer.pad_token_id
    trainable = [(n, p) for n, p in lora_smol.named_parameters() if p.requires_grad]
    reference, count = collate(review_features, "pad", pad_id)
    lora_smol.zero_grad()
    plain_loss = forward_loss(lora_smol, reference, count)
    plain_loss.backward()
    expected = {n: p.grad.clone() for n, p in trainable}
    lora_smol.zero_grad()
    prefixed, _ = collate(review_features, "prefix", pad_id)
    # A budget of ~2 rows per chunk: the step runs the suffixes in several chunks on one prefix computation.
    loss = shared_prefix_backward(lora_smol, prefixed, count, chunk_tokens=2 * prefixed["input_ids"].shape[1])
    assert loss.item() == pytest.approx(plain_loss.item(), rel=2e-4)
    lower = [n for n, _ in trainable if "layers.0." in n and "lora_A" in n]
    assert lower and all(expected[n].abs().sum() > 0 for n in lower)  # the first layer learns through the prefix
    for name, param in trainable:
        diff = (param.grad - expected[name]).norm() / expected[name].norm().clamp(min=1e-12)
        assert diff < 2e-3, name
    lora_smol.zero_grad()


@pytest.fixture(scope="module")
def mixed_features(trainable_smol, review_features, tmp_path_factory):
    """The review rows plus rows of another prompt (no shared system message), as one loop update mixes a
    template's rows with general replay rows."""
    from llmplay.settings import Settings

    rows = [{"prompt": "Name a primary colour.", "completion": "Red."}, {"prompt": "2 + 2?", "completion": "4"}]
    config = TrainConfig.from_dict(
        {"name": "g", "base_model": CHAT_MODEL, "max_length": 256, "data": {"source": "rows", "rows": rows}}
    )
    settings = Settings(data_dir=tmp_path_factory.mktemp("general"))
    examples = build_examples(config, trainable_smol, load_rows(config, settings).rows)
    general = [{"input_ids": e.input_ids, "labels": e.labels} for e in examples]
    return review_features[:3] + general + review_features[3:]


def test_a_mixed_batch_steps_through_its_prefix_groups_with_the_plain_batch_gradient(
    lora_smol, trainable_smol, mixed_features, tmp_path
):
    from transformers import TrainingArguments

    pad_id = trainable_smol.tokenizer.pad_token_id
    batch = CausalCollator(pad_id=pad_id, mode="prefix", max_length=256)(mixed_features)
    assert "parts" in batch and "prefix_ids" in batch["parts"][0]  # the review rows share their prefix
    assert sum(p["labels"].shape[0] for p in batch["parts"][:1]) == 5
    trainable = [(n, p) for n, p in lora_smol.named_parameters() if p.requires_grad]
    reference, count = collate(mixed_features, "pad", pad_id)
    lora_smol.zero_grad()
    plain = forward_loss(lora_smol, reference, count)
    plain.backward()
    expected = {n: p.grad.clone() for n, p in trainable}
    lora_smol.zero_grad()
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", disable_tqdm=True)
    trainer = CausalTrainer(model=lora_smol, args=args, fast_loss=True)
    loss = trainer.training_step(lora_smol, batch)
    assert float(loss) == pytest.approx(plain.item(), rel=2e-4)
    assert trainer.state.num_input_tokens_seen == sum(len(f["input_ids"]) for f in mixed_features)
    for name, param in trainable:
        diff = (param.grad - expected[name]).norm() / expected[name].norm().clamp(min=1e-12)
        assert diff < 2e-3, name
    lora_smol.zero_grad()


def run_entry(settings, monkeypatch, tmp_path, config: dict, *extra: str) -> int:
    for key, value in entry_env(settings).items():
        monkeypatch.setenv(key, value)
    return entry.main([str(write_config(tmp_path, config)), *extra])


def last_job(settings):
    return records.list_jobs(settings.db_path, limit=1)[0]


@pytest.mark.slow
def test_a_short_lora_run_learns_its_rows_and_registers_a_version_offered_by_name(
    settings, tmp_path, monkeypatch, engine, isolated_engine, capsys
):
    from peft import PeftModel
    from safetensors.torch import load_file

    from llmplay.ui.models_panel import generative_names

    config = tiny_config("smoke", max_steps=4, early_stopping_patience=2)  # keeps the best of its evaluations
    assert run_entry(settings, monkeypatch, tmp_path, config) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    job = last_job(settings)
    assert job.status == "done" and job.step == 4 and summary["status"] == "done"
    rows = records.progress(settings.db_path, job.id)
    train_rows = [r for r in rows if r["loss"] is not None]
    assert len(train_rows) == 4 and all(r["total_steps"] == 4 and r["tokens_per_s"] for r in train_rows)
    assert any(r["eval_loss"] is not None for r in rows) and rows[-1]["metrics"]["peak_rss_mb"] > 100
    version = registry.get_version(settings.db_path, job.version_id)
    assert version.label == f"{CHAT_MODEL} + smoke v1" == summary["version"]
    assert version.method == "lora" and version.data_hash and len(version.row_ids) == 6
    assert "loss" in version.metrics and version.metrics["train_tokens"] > 0
    assert (tmp_path / "data" / "training" / "jobs" / str(job.id) / "tb").is_dir()  # TensorBoard events
    weights = load_file(f"{version.path}/adapter_model.safetensors")
    assert any("lora_B" in k and v.abs().sum() > 0 for k, v in weights.items())  # B starts at zero
    assert version.label in generative_names(isolated_engine)

    base = copy.deepcopy(engine.models.get(engine.catalog.get(CHAT_MODEL)).model)
    tuned = PeftModel.from_pretrained(base, version.path)
    config = TrainConfig.from_dict(tiny_config("smoke"))
    examples = build_examples(
        config, engine.models.get(engine.catalog.get(CHAT_MODEL)), load_rows(config, settings).rows
    )
    pad_id = engine.models.get(engine.catalog.get(CHAT_MODEL)).tokenizer.pad_token_id
    batch, count = collate([{"input_ids": e.input_ids, "labels": e.labels} for e in examples], "pad", pad_id)
    with torch.no_grad():
        after = forward_loss(tuned, batch, count).item()
        logits = tuned(input_ids=batch["input_ids"][:1]).logits
        with tuned.disable_adapter():
            before = forward_loss(tuned, batch, count).item()
            base_logits = tuned(input_ids=batch["input_ids"][:1]).logits
    assert after < before * 0.8
    assert not torch.allclose(logits, base_logits, atol=1e-3)


@pytest.mark.slow
def test_adalora_prunes_ranks_during_the_run(settings, tmp_path, monkeypatch, isolated_engine):
    config = tiny_config(
        "ada", method="adalora", max_steps=6, adalora_init_r=4, adalora_target_r=1, adalora_tinit=1,
        adalora_tfinal=2, adalora_delta_t=1, data=NO_VALIDATION,
    )  # fmt: skip
    assert run_entry(settings, monkeypatch, tmp_path, config) == 0
    job = last_job(settings)
    metrics = [r["metrics"] for r in records.progress(settings.db_path, job.id) if r["loss"] is not None]
    budgets = [m["adalora_budget"] for m in metrics]
    active = [m["adalora_active_ranks"] for m in metrics]
    assert budgets[0] > budgets[-1]  # the allocator ran: 4 ranks per module at first, 1 at the end
    assert active[0] > active[-1]
    version = registry.get_version(settings.db_path, job.version_id)
    assert version.method == "adalora"
    # Pruned to one rank per module on average (some keep none): the version still loads and answers by its label.
    (reply,) = isolated_engine.generate(version.label, ["Is 'nice' good or bad?"], GenerationParams(max_new_tokens=2))
    assert reply.error is None and reply.completion_tokens > 0


def test_dora_finishes_and_counts_truncated_rows(settings, tmp_path, monkeypatch, capsys):
    assert (
        run_entry(
            settings,
            monkeypatch,
            tmp_path,
            tiny_config("dora", method="dora", max_steps=2, max_length=24, data=NO_VALIDATION),
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["status"] == "done" and any("truncated" in n for n in summary["notes"])
    config = json.loads((tmp_path / "data" / "models" / "versions" / "dora" / f"job-{summary['job']}" /
                         "adapter_config.json").read_text())  # fmt: skip
    assert config["use_dora"] is True


def test_prompt_tuning_finishes_and_registers(settings, tmp_path, monkeypatch):
    config = tiny_config(
        "soft", method="prompt_tuning", num_virtual_tokens=4, learning_rate=3e-2, max_steps=2, data=NO_VALIDATION
    )
    assert run_entry(settings, monkeypatch, tmp_path, config) == 0
    version = registry.get_version(settings.db_path, last_job(settings).version_id)
    adapter = json.loads((Path(version.path) / "adapter_config.json").read_text())
    assert version.method == "prompt_tuning" and adapter["peft_type"] == "PROMPT_TUNING"


@pytest.mark.slow
def test_continued_pretraining_on_raw_text_with_gradient_checkpointing(settings, tmp_path, monkeypatch, capsys):
    texts = [{"text": f"Quarterly report {i}: net sales rose and the order book grew to a record."} for i in range(6)]
    config = tiny_config(
        "cpt", task="cpt", max_steps=2, max_length=32, gradient_checkpointing=True,
        data={"rows": texts, "validation_fraction": 0.0},
    )  # fmt: skip
    assert run_entry(settings, monkeypatch, tmp_path, config) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    version = registry.get_version(settings.db_path, last_job(settings).version_id)
    assert version.task == "cpt" and summary["metrics"]["train_loss"] > 0


def test_invalid_hyper_parameters_fail_the_job_before_anything_loads(settings, tmp_path, monkeypatch, capsys):
    job = records.create_job(settings.db_path, {"name": "bad", "base_model": CHAT_MODEL})
    config = tiny_config("bad", lora_r=0, learning_rate=5)
    assert run_entry(settings, monkeypatch, tmp_path, config, "--job", str(job.id)) == 2
    failed = records.get_job(settings.db_path, job.id)
    assert failed.status == "failed" and "lora_r" in failed.error and "learning_rate" in failed.error
    assert "lora_r must be" in capsys.readouterr().err


def test_bad_model_inputs_are_refused_before_training(settings, tmp_path):
    def refused(**overrides) -> str:
        with pytest.raises(CausalTrainingError) as info:
            train_causal(TrainConfig.from_dict(tiny_config(**overrides)), settings, tmp_path / "job")
        assert not (tmp_path / "job" / "checkpoints").exists()
        return str(info.value)

    message = refused(target_modules=["q_proj", "qkv"])
    assert "qkv do not exist" in message and "down_proj" in message
    adapter = tmp_path / "gemma-adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    other = registry.register(settings.db_path, name="g", base_model=BASE_MODEL, kind="adapter", path=adapter)
    message = refused(parent_version=other.label)
    assert BASE_MODEL in message and "only fits the model it was trained on" in message
    assert "No trained version" in refused(parent_version=f"{CHAT_MODEL} + nothing v3")
    assert "adalora_tinit" in refused(method="adalora", adalora_tinit=2, adalora_tfinal=2, max_steps=3)
    assert "causal models train an adapter" in refused(method="full")


def test_an_exception_inside_training_marks_the_job_failed(settings, tmp_path, monkeypatch):
    def crash(self, *args, **kwargs):
        raise RuntimeError("simulated crash in a training step")

    monkeypatch.setattr(CausalTrainer, "training_step", crash)
    assert run_entry(settings, monkeypatch, tmp_path, tiny_config("crash")) == 3
    job = last_job(settings)
    assert job.status == "failed" and "simulated crash in a training step" in job.error
    assert job.version_id is None and not registry.list_versions(settings.db_path)


def test_a_parent_version_continues_from_its_adapter(settings, tmp_path, monkeypatch):
    assert run_entry(settings, monkeypatch, tmp_path, tiny_config("line", max_steps=1, data=NO_VALIDATION)) == 0
    first = registry.get_version(settings.db_path, last_job(settings).version_id)
    config = tiny_config("line", max_steps=1, parent_version=first.label, data=NO_VALIDATION)
    assert run_entry(settings, monkeypatch, tmp_path, config) == 0
    second = registry.get_version(settings.db_path, last_job(settings).version_id)
    assert second.version == 2 and second.parent_id == first.id


def test_tiny_rows_have_a_target(trainable_smol, settings):
    config = TrainConfig.from_dict(tiny_config())
    examples = build_examples(config, trainable_smol, load_rows(config, settings).rows)
    assert len(examples) == len(TINY_ROWS) and all(max(e.labels) > 0 for e in examples)
