"""Model catalog: built-ins, adding models by config and by API, validation, safe persistence."""

from __future__ import annotations

import pytest

from llmplay.errors import LlmplayError, UnknownModelError
from llmplay.models.catalog import Catalog, ModelSpec


def test_builtin_models_are_there_with_their_kinds():
    catalog = Catalog()
    kinds = {s.name: s.kind for s in catalog.specs()}
    assert kinds == {"smollm2-135m-instruct": "chat", "gemma-3-270m": "base", "all-minilm-l6-v2": "encoder"}
    assert [s.name for s in catalog.generative()] == ["smollm2-135m-instruct", "gemma-3-270m"]
    assert catalog.get("smollm2-135m-instruct").hub_fallback == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_added_models_persist_and_reload(tmp_path):
    path = tmp_path / "models.yaml"
    catalog = Catalog(path)
    catalog.add(ModelSpec("smol-360", "chat", "hub", "HuggingFaceTB/SmolLM2-360M-Instruct"))
    catalog.add(ModelSpec("vllm", "chat", "endpoint", "http://127.0.0.1:8000/v1", api_model="m", api_key_env="K"))
    reloaded = Catalog(path)
    assert reloaded.get("smol-360").location == "HuggingFaceTB/SmolLM2-360M-Instruct"
    assert reloaded.get("vllm").provider == "openai" and reloaded.get("vllm").api_key_env == "K"
    reloaded.remove("vllm")
    assert "vllm" not in Catalog(path).names()
    assert not list(tmp_path.glob(".models-*")), "no temp files left behind"


def test_models_file_written_by_hand_is_read(tmp_path):
    path = tmp_path / "models.yaml"
    path.write_text("models:\n  - name: local-smol\n    kind: base\n    source: local\n    location: /some/where\n")
    assert Catalog(path).get("local-smol").kind == "base"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models: [1, 2]", "entry 1 is not a mapping"),
        ("models:\n  - name: x\n    kind: chat\n    source: hub\n    location: nope\n", "org/model"),
        ("models:\n  - {name: x, kind: chat, source: hub, location: a/b, colour: red}\n", "Unknown model field"),
        ("models: [", "Cannot read models file"),
        ("models: {a: 1}", "must hold a list"),
    ],
)
def test_bad_models_file_gives_a_clear_error(tmp_path, text, message):
    path = tmp_path / "models.yaml"
    path.write_text(text)
    with pytest.raises(LlmplayError, match=message):
        Catalog(path)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "bad name!"}, "not valid"),
        ({"kind": "vision"}, "kind must be one of"),
        ({"source": "ftp"}, "source must be one of"),
        ({"location": " "}, "needs a location"),
        ({"source": "endpoint", "location": "localhost:8000"}, "must start with http"),
        ({"context_length": 0}, "context_length"),
    ],
)
def test_spec_validation(kwargs, message):
    base = {"name": "ok", "kind": "chat", "source": "hub", "location": "org/model"}
    with pytest.raises(LlmplayError, match=message):
        ModelSpec(**{**base, **kwargs})


def test_cannot_shadow_or_remove_builtins_or_add_missing_folder(tmp_path):
    catalog = Catalog(tmp_path / "models.yaml")
    with pytest.raises(LlmplayError, match="built-in"):
        catalog.add(ModelSpec("smollm2-135m-instruct", "chat", "hub", "a/b"))
    with pytest.raises(LlmplayError, match="built-in"):
        catalog.remove("gemma-3-270m")
    with pytest.raises(LlmplayError, match="does not exist"):
        catalog.add(ModelSpec("mine", "chat", "local", str(tmp_path / "missing")))
    with pytest.raises(UnknownModelError, match="Known models"):
        catalog.get("missing")
    assert not (tmp_path / "models.yaml").exists()
