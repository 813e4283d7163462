"""Training methods and tasks are registries (methods/, tasks/); TrainConfig is made of their fields and an old
flat YAML file loads to the same values."""

from __future__ import annotations

from dataclasses import fields

import pytest

from llmplay import yamlsafe
from llmplay.training.config import METHODS, TASKS, TrainConfig, TrainConfigError
from llmplay.training.methods import METHODS as METHOD_REGISTRY
from llmplay.training.methods import get_method
from llmplay.training.plugins import Registry, UnknownPluginError
from llmplay.training.tasks import TASKS as TASK_REGISTRY
from llmplay.training.tasks import get_task, task_names


def test_the_registries_list_every_method_and_task():
    assert METHOD_REGISTRY.names() == ("lora", "adalora", "dora", "prompt_tuning", "full")
    assert TASK_REGISTRY.names() == ("sft", "cpt", "dpo", "classification", "ner", "mlm")
    assert METHOD_REGISTRY.names() == METHODS and TASK_REGISTRY.names() == TASKS
    assert task_names("causal") == ("sft", "cpt", "dpo")
    assert task_names("encoder") == ("classification", "ner", "mlm")
    assert [get_task(t).kind for t in ("sft", "classification", "ner", "mlm")] == [
        "adapter",
        "classifier",
        "tagger",
        "encoder",
    ]
    assert [m.name for m in METHOD_REGISTRY.all() if m.encoder] == ["lora", "full"]


def test_each_method_and_task_declares_its_own_fields():
    owned = {**METHOD_REGISTRY.option_fields(), **TASK_REGISTRY.option_fields()}
    assert owned["lora"] == ["lora_r", "lora_alpha", "lora_dropout", "target_modules"]
    assert owned["adalora"][0] == "adalora_init_r" and owned["dora"] == []
    assert owned["prompt_tuning"] == ["num_virtual_tokens"] and owned["full"] == ["freeze_layers"]
    assert owned["dpo"] == ["dpo_beta"]
    config_fields = {f.name for f in fields(TrainConfig)}
    assert {name for names in owned.values() for name in names} <= config_fields


@pytest.mark.parametrize(("get", "kind", "known"), [(get_method, "method", "lora, adalora"), (get_task, "task", "sft")])
def test_an_unknown_name_is_refused_with_the_known_ones(get, kind, known):
    with pytest.raises(UnknownPluginError, match=f"Unknown training {kind} 'nope'; known: {known}"):
        get("nope")
    with pytest.raises(TrainConfigError, match=f"{kind} must be one of .*; got 'nope'"):
        TrainConfig.from_dict({"name": "a", "base_model": "b", kind: "nope", "data": {"dataset": "d", "template": "t"}})


def test_a_name_registered_twice_is_a_mistake():
    registry = Registry("thing")

    @registry.register
    class One:
        name = "one"

    with pytest.raises(ValueError, match="registered twice"):
        registry.register(One)
    assert registry.names() == ("one",)


OLD_FLAT_YAML = """
name: fpb-adalora
base_model: smollm2-135m-instruct
task: sft
method: adalora
lora_r: 8
lora_alpha: 16
lora_dropout: 0.05
target_modules: [q_proj, v_proj]
adalora_init_r: 10
adalora_target_r: 2
adalora_tinit: 3
adalora_tfinal: 4
adalora_delta_t: 2
num_virtual_tokens: 20
freeze_layers: 0
dpo_beta: 0.2
learning_rate: 0.0003
epochs: 1
batch_size: 4
data:
  source: dataset
  dataset: builtin:fpb
  template: financial-sentiment
"""


def test_an_old_flat_yaml_config_loads_to_the_same_values(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text(OLD_FLAT_YAML, encoding="utf-8")
    config = TrainConfig.from_dict(yamlsafe.load_file(str(path)))
    values = config.to_dict()
    expected = yamlsafe.load_file(str(path))
    for key, value in expected.items():
        if key != "data":
            assert values[key] == value, key
    assert values["data"]["dataset"] == "builtin:fpb" and values["data"]["template"] == "financial-sentiment"
    assert values["max_length"] == 1024 and values["padding"] == "prefix"  # defaults untouched
    # The same settings, in the same order as before the registries (stored configs and the YAML view keep it).
    assert list(values)[:13] == [
        "name",
        "base_model",
        "task",
        "method",
        "data",
        "parent_version",
        "stack_on_parent",
        "orthogonal_weight",  # added after the registries (O-LoRA), beside the stacking it needs
        "dpo_beta",
        "lora_r",
        "lora_alpha",
        "lora_dropout",
        "target_modules",
    ]
    assert list(values)[-1] == "report_to"
    assert TrainConfig.from_dict(values) == config  # a stored config round-trips


def test_each_plugin_checks_its_own_fields():
    base = {"name": "a", "base_model": "b", "data": {"dataset": "d", "template": "t"}}
    with pytest.raises(TrainConfigError) as info:
        TrainConfig.from_dict({**base, "lora_r": 0, "adalora_init_r": 2, "adalora_target_r": 3, "dpo_beta": 0})
    problems = info.value.problems
    assert sum("lora_r" in p for p in problems) == 1  # dora shares lora's fields and does not check them again
    assert "adalora_target_r must not exceed adalora_init_r" in problems
    assert any(p.startswith("dpo_beta must be a number") for p in problems)
    with pytest.raises(TrainConfigError, match="encoder task 'ner' supports method full"):
        TrainConfig.from_dict({**base, "task": "ner", "method": "prompt_tuning"})
    assert TrainConfig.from_dict({**base, "task": "ner", "method": "full"}).uses_peft is False


def test_the_shared_trainers_ask_the_task_and_never_branch_on_its_name():
    import re

    from tests.conftest import ROOT

    # A task name compared with a literal ("sft", ("sft", "cpt")) outside tasks/: a new task would have to edit it.
    branch = re.compile(r"\btask\s*(==|!=)\s*[\"']|\btask\s+(not\s+)?in\s+\(\s*[\"']")
    own_trainer = {"dpo.py"}  # the dpo task's own trainer may check that it was handed a dpo job
    found = [
        f"{path.name}:{n}"
        for path in sorted((ROOT / "llmplay" / "training").glob("*.py"))
        if path.name not in own_trainer
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if branch.search(line)
    ]
    assert found == []


def test_the_encoder_tasks_supply_their_own_rows_labels_preview_and_metrics():
    ner, cls, mlm = get_task("ner"), get_task("classification"), get_task("mlm")
    row = {"id": 0, "tokens": ["EU", "rejects"], "tags": ["B-ORG", "O"]}
    assert [s["text"] for s in ner.preview_segments(row) if s["trained"]] == ["B-ORG "]
    assert ner.label_set([row], None, "rows") == ["O", "B-ORG", "I-ORG"]
    assert cls.preview_segments({"text": "up", "label": "positive"})[-1] == {"text": " -> positive", "trained": True}
    assert cls.label_set([{"label": "b"}, {"label": "a"}], None, "rows") == ["a", "b"]
    assert mlm.label_set([{"text": "x"}], None, "rows") == [] and mlm.metrics([]) is None
    assert mlm.add_metrics({"loss": 0.0}) == {"loss": 0.0, "perplexity": 1.0}
    assert (ner.plain_file_format, mlm.plain_file_format) == ("conll", "text")
    assert (ner.labelled, cls.labelled, mlm.labelled) == (True, True, False)
