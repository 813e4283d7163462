"""Model catalog: built-ins, adding models by config and by API, validation, safe persistence."""

from __future__ import annotations

import pytest
import yaml

from llmplay.errors import LlmplayError, UnknownModelError
from llmplay.models.catalog import Catalog, ModelSpec
from llmplay.settings import Settings


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


# ---- what a visitor may add (issue #9, defect 7) ------------------------------------------------------
def _user(name: str, source: str, location: str, **kw) -> ModelSpec:
    return ModelSpec(name, "chat", source, location, added_by="user", **kw)


@pytest.fixture()
def user_catalog(tmp_path) -> Catalog:
    settings = Settings(data_dir=tmp_path / "data", allowed_model_dirs=(tmp_path / "shared-models",))
    (tmp_path / "data" / "models" / "mine").mkdir(parents=True)
    (tmp_path / "shared-models" / "team").mkdir(parents=True)
    return Catalog(settings.models_file, settings=settings)


def test_local_models_only_from_allowed_folders_with_one_message_for_all_others(user_catalog, tmp_path):
    outside = ["/etc", "/etc/passwd", "/no/such/folder", str(tmp_path / "data" / "models" / ".." / "models.yaml")]
    messages = []
    for location in outside:
        with pytest.raises(LlmplayError, match="inside an allowed folder") as err:
            user_catalog.add(_user("probe", "local", location))
        messages.append(str(err.value).replace(repr(location), "PATH"))
    assert len(set(messages)) == 1, "the reply must not tell which server paths exist"
    # A symlink inside an allowed folder that points outside it is outside.
    (tmp_path / "data" / "models" / "link").symlink_to("/etc")
    with pytest.raises(LlmplayError, match="inside an allowed folder"):
        user_catalog.add(_user("probe", "local", str(tmp_path / "data" / "models" / "link")))
    (tmp_path / "data" / "models" / "mine" / "evil.gguf").symlink_to("/etc/passwd")
    with pytest.raises(LlmplayError, match="inside an allowed folder"):
        user_catalog.add(_user("probe", "local", str(tmp_path / "data" / "models" / "mine"), gguf_file="evil.gguf"))
    with pytest.raises(LlmplayError, match="gguf_file must be a file name"):
        _user("probe", "local", str(tmp_path / "data" / "models" / "mine"), gguf_file="../../x.gguf")
    assert "probe" not in user_catalog.names() and not user_catalog.models_file.exists()
    # The data dir's models folder and the operator's folders are allowed; inside them, a missing path is reported.
    user_catalog.add(_user("mine", "local", str(tmp_path / "data" / "models" / "mine")))
    user_catalog.add(_user("team", "local", str(tmp_path / "shared-models" / "team")))
    with pytest.raises(LlmplayError, match="does not exist"):
        user_catalog.add(_user("gone", "local", str(tmp_path / "data" / "models" / "gone")))
    assert [s.name for s in user_catalog.user_added()] == ["mine", "team"]


@pytest.mark.parametrize(
    "hub_id", ["../main", "org/..", "./x", "org/-x", "org/x.", "a--b/c", "org/m.git", "é/model", "/etc/x"]
)
def test_hub_ids_must_follow_the_hub_syntax(hub_id):
    with pytest.raises(LlmplayError, match="Hub id must look like"):
        ModelSpec("h", "chat", "hub", hub_id)


def test_a_hub_id_never_loads_a_local_folder(tmp_path, monkeypatch):
    from llmplay.errors import ModelLoadError
    from llmplay.models import sources

    monkeypatch.chdir(tmp_path)
    (tmp_path / "org" / "model").mkdir(parents=True)  # from_pretrained("org/model") would load this folder
    with pytest.raises(ModelLoadError, match="names a path on this server"):
        sources.resolve(_user("h", "hub", "org/model"), tmp_path / "scratch")
    assert sources.resolve(_user("h", "hub", "org/other"), tmp_path / "scratch").from_hub


def test_user_entries_are_rechecked_when_the_file_is_read(tmp_path):
    path = tmp_path / "models.yaml"
    entries = [
        {"name": "escaped", "kind": "chat", "source": "local", "location": "/etc", "added_by": "user"},
        {"name": "operator-local", "kind": "chat", "source": "local", "location": "/opt/models/x"},
    ]
    path.write_text(yaml.safe_dump({"models": entries}))
    catalog = Catalog(path)
    assert "escaped" not in catalog.names()  # left out of the catalog...
    assert catalog.get("operator-local").added_by == "operator"  # ...while the operator's entries are trusted
    catalog.add(ModelSpec("another", "chat", "hub", "org/model", added_by="user"))
    assert [e["name"] for e in yaml.safe_load(path.read_text())["models"]] == ["operator-local", "another", "escaped"]


def test_visitors_cannot_replace_the_operators_models(user_catalog):
    user_catalog.add(ModelSpec("team-vllm", "chat", "endpoint", "http://10.0.0.5:8000/v1", api_key_env="VLLM_KEY"))
    with pytest.raises(LlmplayError, match="set up by the operator"):
        user_catalog.add(_user("team-vllm", "endpoint", "http://127.0.0.1:9/v1"))
    assert user_catalog.get("team-vllm").api_key_env == "VLLM_KEY"
