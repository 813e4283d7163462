"""An engine on another data dir can share a second engine's loaded catalog models (the tests' one copy of the
weights per session); what it loads itself stays its own and goes when it closes."""

from __future__ import annotations

from tests.conftest import CHAT_MODEL


def test_a_sharing_engine_reuses_the_owners_base_model_and_closing_it_keeps_it(engine, isolated_engine):
    spec = engine.catalog.get(CHAT_MODEL)
    assert isolated_engine.settings.data_dir != engine.settings.data_dir
    assert isolated_engine.models.get(spec) is engine.models.get(spec)
    assert isolated_engine.models.is_loaded(spec)
    isolated_engine.close()
    assert engine.models.is_loaded(spec), "the owner keeps its models when a sharing engine closes"


def test_unloading_adapters_drops_the_versions_and_keeps_the_plain_models(settings, tmp_path, monkeypatch):
    from llmplay.models.catalog import Catalog
    from llmplay.models.loader import ModelManager

    manager = ModelManager(settings)
    monkeypatch.setattr(manager, "_load", lambda spec, dtype, adapter, progress: object())  # no weights needed
    spec = Catalog(settings.models_file, settings=settings).get(CHAT_MODEL)
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    manager.get(spec)
    manager.get(spec, adapter=str(adapter))
    assert manager.is_loaded(spec, adapter=str(adapter))
    manager.unload_adapters()
    assert manager.is_loaded(spec) and not manager.is_loaded(spec, adapter=str(adapter))


def test_dropping_conversions_keeps_only_the_ones_asked_for(settings, monkeypatch):
    from types import SimpleNamespace

    from llmplay.models.catalog import Catalog
    from llmplay.models.loader import ModelManager

    manager = ModelManager(settings)
    fake = SimpleNamespace(conversions={("fast", "float16"): "a", ("fast", "float32"): "b", ("fast", "bfloat16"): "c"})
    monkeypatch.setattr(manager, "_load", lambda spec, dtype, adapter, progress: fake)
    manager.get(Catalog(settings.models_file, settings=settings).get(CHAT_MODEL))
    manager.drop_conversions(lambda key: key == ("fast", "float16"))
    assert fake.conversions == {("fast", "float16"): "a"}
